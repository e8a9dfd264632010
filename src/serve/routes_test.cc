#include "serve/routes.h"

#include <gtest/gtest.h>

#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "serve/server_internal.h"

namespace detops::serve {
namespace {

// A path that the template matches: placeholders filled with valid values.
std::string Example(std::string path) {
  for (auto [from, to] : {std::pair<std::string, std::string>{"{name}", "cars-v2.1"},
                          {"{version}", "3"},
                          {"{id}", "0123456789abcdef"}}) {
    for (size_t at; (at = path.find(from)) != std::string::npos;) path.replace(at, from.size(), to);
  }
  return path;
}

TEST(RoutesTest, TemplatesBecomeAnchoredRegexesWithOneCapturePerPlaceholder) {
  std::smatch m;
  const std::string promote = "/v1/models/cars/versions/12/promote";
  ASSERT_TRUE(std::regex_match(
      promote, m, std::regex(RouteRegex("/v1/models/{name}/versions/{version}/promote"))));
  EXPECT_EQ(m[1].str(), "cars");
  EXPECT_EQ(m[2].str(), "12");
  const std::regex rollback(RouteRegex("/v1/models/{name}/rollback"));
  // The name rule is core/names.h's: letters, digits, '.', '_', '-', not first '_' or '.'.
  EXPECT_TRUE(std::regex_match("/v1/models/a.b_c-1/rollback", rollback));
  EXPECT_FALSE(std::regex_match("/v1/models/_cars/rollback", rollback));
  EXPECT_FALSE(std::regex_match("/v1/models/.cars/rollback", rollback));
  EXPECT_FALSE(std::regex_match("/v1/models/" + std::string(65, 'a') + "/rollback", rollback));
  EXPECT_FALSE(std::regex_match("/v1/models/a/b/rollback", rollback));
  // Literal dots are literal.
  EXPECT_FALSE(std::regex_match("/v1/predictXbatch", std::regex(RouteRegex("/v1/predict.batch"))));
  const std::regex job(RouteRegex("/v1/jobs/{id}"));
  EXPECT_TRUE(std::regex_match("/v1/jobs/0123456789abcdef", job));
  EXPECT_FALSE(std::regex_match("/v1/jobs/0123", job));
}

// Serves the server's route table with stub handlers over loopback and
// records the label the post-routing handler gets for each request: every
// route's label is its template, anything else is "other".
class RouteLabelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const ServerRoute& r : ServerImpl::Routes()) {
      AddRoute(server_, r.method, r.path, [](const httplib::Request&, httplib::Response& res) {
        res.set_content("{}", "application/json");
      });
    }
    server_.set_post_routing_handler([this](const httplib::Request&, httplib::Response&) {
      std::lock_guard lock(mu_);
      labels_.emplace_back(TakeRouteLabel());
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
  }
  // The label the server gave this request.
  std::string Label(const std::string& method, const std::string& path) {
    httplib::Client c("127.0.0.1", port_);
    auto r = method == "GET" ? c.Get(path.c_str()) : c.Post(path.c_str(), "{}", "application/json");
    EXPECT_TRUE(r) << method << " " << path;
    std::lock_guard lock(mu_);
    return labels_.empty() ? "(none)" : labels_.back();
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> labels_;
};

TEST_F(RouteLabelTest, EveryRouteIsLabelledWithItsTemplate) {
  std::set<std::string> seen;
  for (const ServerRoute& r : ServerImpl::Routes()) {
    EXPECT_EQ(Label(r.method, Example(r.path)), r.path) << r.method << " " << Example(r.path);
    EXPECT_TRUE(seen.insert(std::string(r.method) + " " + r.path).second) << "twice: " << r.path;
  }
  // The routes the API documents (serve.h) are all there.
  for (const char* want :
       {"POST /v1/predict", "POST /v1/predict/batch", "POST /v1/feedback", "GET /v1/models",
        "POST /v1/models/{name}/versions/{version}/promote", "POST /v1/models/{name}/rollback",
        "GET /v1/jobs/{id}", "GET /healthz", "GET /readyz", "GET /metrics"}) {
    EXPECT_TRUE(seen.count(want)) << want;
  }
}

TEST_F(RouteLabelTest, UnknownPathsAndMethodsAreOther) {
  EXPECT_EQ(Label("POST", "/v1/models/cars/versions/3/promote"),
            "/v1/models/{name}/versions/{version}/promote");
  for (const char* path :
       {"/v1/models/cars/versions/3/delete", "/v1/models/cars", "/v1/models/cars/rollback/x",
        "/v1/models/_cars/rollback", "/v1/jobs/nope", "/wp-login.php", "/"}) {
    EXPECT_EQ(Label("POST", path), "other") << path;
    EXPECT_EQ(Label("GET", path), "other") << path;
  }
  // A route's path with the other method is not that route.
  EXPECT_EQ(Label("GET", "/v1/predict"), "other");
  EXPECT_EQ(Label("POST", "/v1/models"), "other");
  // A label does not stick to the connection thread for the next request.
  EXPECT_EQ(Label("GET", "/healthz"), "/healthz");
  EXPECT_EQ(Label("GET", "/nothing-here"), "other");
}

}  // namespace
}  // namespace detops::serve
