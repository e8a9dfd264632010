#include "serve/routes.h"

#include <cassert>

#include "core/names.h"

namespace detops::serve {
namespace {

constexpr std::string_view kOther = "other";
thread_local std::string_view t_route_label = kOther;

// Regex metacharacters that occur in paths and must match themselves.
bool IsRegexMeta(char c) {
  return std::string_view(R"(.^$|()[]*+?\)").find(c) != std::string_view::npos;
}

}  // namespace

std::string RouteRegex(std::string_view path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] != '{') {
      if (IsRegexMeta(path[i])) out += '\\';
      out += path[i++];
      continue;
    }
    const size_t close = path.find('}', i);
    assert(close != std::string_view::npos);
    const std::string_view name = path.substr(i + 1, close - i - 1);
    if (name == "name") {
      out += "(" + std::string(kNamePattern) + ")";
    } else if (name == "version") {
      out += "([0-9]+)";
    } else if (name == "id") {
      out += "([0-9a-f]{16})";
    } else {
      assert(false && "unknown route placeholder");
    }
    i = close + 1;
  }
  return out;
}

void AddRoute(httplib::Server& server, std::string_view method, std::string_view path,
              httplib::Server::Handler handler) {
  auto labelled = [path, handler = std::move(handler)](const httplib::Request& req,
                                                       httplib::Response& res) {
    t_route_label = path;
    handler(req, res);
  };
  const std::string regex = RouteRegex(path);
  if (method == "GET") {
    server.Get(regex, httplib::Server::Handler(std::move(labelled)));
  } else {
    assert(method == "POST");
    server.Post(regex, httplib::Server::Handler(std::move(labelled)));
  }
}

std::string_view TakeRouteLabel() {
  std::string_view label = t_route_label;
  t_route_label = kOther;
  return label;
}

}  // namespace detops::serve
