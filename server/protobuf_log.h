// Protobuf's own log lines (e.g. "String field ... contains invalid UTF-8 data" for every request
// a client sends with a bad string) go through TV_LOG as WARNINGs, at most one a second with a
// count of the ones dropped: a client cannot flood the log by sending bad requests.
#pragma once

namespace turbovid::server {

// Call once at process start, before serving (protobuf's handler is process-wide).
void RouteProtobufLogs();

}  // namespace turbovid::server
