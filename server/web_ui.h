// The web page served beside the APIs (server/web/: plain HTML, CSS and JS, embedded into the
// binary at build time by server/web/embed.cmake): submit a job, watch it step by step, play and
// download the video, list recent jobs. It talks to the native JSON gateway (/turbovid/v1/).
#pragma once

#include <cstddef>

#include "common/http_server.h"

namespace turbovid::server {

struct WebAsset {
  const char* path;          // "/index.html"
  const char* content_type;  // "text/html; charset=utf-8"
  const unsigned char* data;
  size_t size;
};
extern const WebAsset kWebAssets[];  // generated (web_assets.cc)
extern const size_t kWebAssetCount;

// Serves "/" (index.html) and every asset by its path; other paths under "/" get 404.
void InstallWebUi(common::HttpServer* http);

}  // namespace turbovid::server
