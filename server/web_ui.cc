// Static files from the embedded table; the page is small enough to answer from memory.
#include "server/web_ui.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace turbovid::server {

void InstallWebUi(common::HttpServer* http) {
  http->HandlePrefix("/", [](const common::HttpRequest& request) {
    if (request.method != "GET" && request.method != "HEAD") {
      return common::HttpResponse(405, "text/plain; charset=utf-8",
                                  absl::StrCat(request.method, " ", request.path, ": GET only\n"));
    }
    const std::string path = request.path == "/" ? "/index.html" : request.path;
    for (size_t i = 0; i < kWebAssetCount; ++i) {
      if (path == kWebAssets[i].path) {
        return common::HttpResponse(
            200, kWebAssets[i].content_type,
            std::string(reinterpret_cast<const char*>(kWebAssets[i].data), kWebAssets[i].size));
      }
    }
    return common::HttpResponse(404, "text/plain; charset=utf-8",
                                absl::StrCat("no page ", request.path, "\n"));
  });
}

}  // namespace turbovid::server
