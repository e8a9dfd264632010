#pragma once
// Route templates: the one place a route's path is written. A template such
// as "/v1/models/{name}/versions/{version}/promote" gives both the regex the
// HTTP server matches and the route's metrics label, so that a route cannot
// be matched one way and counted another. Internal to serve.

#include <httplib.h>

#include <string>
#include <string_view>

namespace detops::serve {

// The regex for a template, one capture per placeholder in order:
// {name}: a dataset or model name (core/names.h kNamePattern), {version}:
// digits, {id}: a job id (16 lower-case hex digits). Other text is literal. An unknown
// placeholder is a programmer error (asserted).
std::string RouteRegex(std::string_view path_template);

// Registers `handler` for `method` ("GET" or "POST") on RouteRegex(path);
// while it runs, the request's route label on its thread is `path`.
// `path` must outlive the server (a string literal).
void AddRoute(httplib::Server& server, std::string_view method, std::string_view path,
              httplib::Server::Handler handler);

// The template of the route that handled the request on this thread, or
// "other" when no route matched (404s, scanners: one label, bounded
// cardinality). Resets it to "other"; call once per request, from the
// post-routing handler (httplib runs routing and post-routing on one thread).
std::string_view TakeRouteLabel();

}  // namespace detops::serve
