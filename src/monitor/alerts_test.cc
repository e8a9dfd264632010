// Alerts over a real SQLite workspace: one row per episode (updates,
// peak level, ok windows, auto-resolve), acknowledge and resolve, the
// list's filters, the promotion freeze, when to notify, two monitors at
// once; and notification: a loopback webhook receiver (retries, final 4xx,
// an unreachable port, a timeout) and a command fed the JSON on stdin.

#include "monitor/alerts.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "testing/testutil.h"

namespace detops {
namespace {

using testing::TempDir;

AlertObservation Obs(const std::string& signal, Level level, double value = 0.3,
                     int64_t end_ms = 2'000'000, const std::string& model = "cars") {
  AlertObservation o;
  o.model_name = model;
  o.model_version = 2;
  o.signal = signal;
  o.statistic = "psi";
  o.level = level;
  o.value = value;
  o.threshold = level == Level::kOk ? 0.1 : 0.25;
  o.window_start_ms = end_ms - 60'000;
  o.window_end_ms = end_ms;
  o.window_n = 200;
  o.example_ids = {"00000000000000a1", "00000000000000a2"};
  o.message = model + "@2: " + signal + " psi " + std::to_string(value);
  return o;
}

class AlertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(*ws);
  }

  // Observes and expects a change.
  AlertChange Observe(const AlertObservation& o, int resolve_after = 3) {
    auto c = ObserveAlert(*ws_, o, resolve_after);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE(c.ok() && c->has_value()) << o.signal << " " << LevelName(o.level);
    return c.ok() && c->has_value() ? **c : AlertChange{};
  }
  size_t Rows() {
    auto all = ListAlerts(*ws_, {});
    EXPECT_TRUE(all.ok()) << all.status().ToString();
    return all.ok() ? all->size() : 0;
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
};

TEST_F(AlertsTest, OneEpisodeIsOneAlertThatUpdates) {
  AlertChange c = Observe(Obs("input.brightness", Level::kWarn, 0.12, 1'000'000));
  EXPECT_TRUE(c.opened);
  EXPECT_FALSE(c.resolved);
  const int64_t id = c.alert.id;
  EXPECT_GT(id, 0);
  EXPECT_EQ(c.alert.state, kAlertOpen);
  EXPECT_EQ(c.alert.kind, kAlertThreshold);
  EXPECT_EQ(c.alert.windows, 1);
  EXPECT_FALSE(c.alert.opened_at.empty());
  EXPECT_EQ(c.alert.opened_at, c.alert.updated_at);

  AlertObservation more = Obs("input.brightness", Level::kRetrain, 0.4, 2'000'000);
  more.model_version = 3;
  more.example_ids.clear();
  for (int i = 0; i < 25; ++i) more.example_ids.push_back("id" + std::to_string(i));
  c = Observe(more);
  EXPECT_FALSE(c.opened);
  EXPECT_EQ(c.alert.id, id);
  EXPECT_EQ(c.alert.windows, 2);
  EXPECT_EQ(c.alert.level, Level::kRetrain);
  EXPECT_EQ(c.alert.peak_level, Level::kRetrain);
  EXPECT_DOUBLE_EQ(c.alert.value, 0.4);
  EXPECT_EQ(c.alert.model_version, 3);
  EXPECT_EQ(c.alert.window_end_ms, 2'000'000);
  EXPECT_EQ(c.alert.example_ids.size(), 10u);  // at most 10 are kept
  EXPECT_EQ(c.alert.example_ids.front(), "id0");

  c = Observe(Obs("input.brightness", Level::kWarn, 0.15, 3'000'000));
  EXPECT_EQ(c.alert.level, Level::kWarn);
  EXPECT_EQ(c.alert.peak_level, Level::kRetrain);  // the episode's highest
  EXPECT_EQ(c.alert.windows, 3);

  // Ok windows count; a level in between starts the count again.
  c = Observe(Obs("input.brightness", Level::kOk, 0.02));
  EXPECT_EQ(c.alert.ok_windows, 1);
  EXPECT_EQ(c.alert.state, kAlertOpen);
  EXPECT_EQ(c.alert.windows, 3);
  c = Observe(Obs("input.brightness", Level::kWarn, 0.11));
  EXPECT_EQ(c.alert.ok_windows, 0);
  EXPECT_EQ(c.alert.windows, 4);
  for (int i = 1; i <= 3; ++i) {
    c = Observe(Obs("input.brightness", Level::kOk, 0.01));
    EXPECT_EQ(c.alert.ok_windows, i);
    EXPECT_EQ(c.resolved, i == 3);
  }
  EXPECT_EQ(c.alert.state, kAlertResolved);
  EXPECT_EQ(c.alert.resolved_by, "monitor");
  EXPECT_EQ(c.alert.note, "recovered after 3 ok windows");
  EXPECT_FALSE(c.alert.resolved_at.empty());
  EXPECT_FALSE(c.level_rose);

  // Stored as returned.
  auto stored = GetAlert(*ws_, id);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(AlertToJson(*stored), AlertToJson(c.alert));
  EXPECT_EQ(Rows(), 1u);

  // Ok with no episode: nothing. A level again: a new episode, a new id.
  auto none = ObserveAlert(*ws_, Obs("input.brightness", Level::kOk), 3);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  c = Observe(Obs("input.brightness", Level::kWarn));
  EXPECT_TRUE(c.opened);
  EXPECT_NE(c.alert.id, id);
  EXPECT_EQ(c.alert.windows, 1);
  EXPECT_EQ(c.alert.peak_level, Level::kWarn);
  EXPECT_EQ(Rows(), 2u);
}

TEST_F(AlertsTest, EpisodesAreKeptPerModelSignalAndKind) {
  const int64_t a = Observe(Obs("input.brightness", Level::kWarn)).alert.id;
  const int64_t b = Observe(Obs("input.contrast", Level::kWarn)).alert.id;
  AlertObservation predicted = Obs("input.brightness", Level::kWarn);
  predicted.kind = kAlertPredicted;
  const int64_t c = Observe(predicted).alert.id;
  const int64_t d = Observe(Obs("input.brightness", Level::kWarn, 0.3, 1, "bikes")).alert.id;
  EXPECT_EQ(std::set<int64_t>({a, b, c, d}).size(), 4u);
  EXPECT_EQ(Observe(Obs("input.brightness", Level::kRetrain)).alert.id, a);
  EXPECT_EQ(Rows(), 4u);
}

TEST_F(AlertsTest, MistakenObservationsAreRefused) {
  AlertObservation o = Obs("input.brightnes", Level::kWarn);
  auto r = ObserveAlert(*ws_, o, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find("unknown signal 'input.brightnes'"), std::string::npos);
  o = Obs("input.brightness", Level::kWarn);
  o.kind = "guess";
  EXPECT_EQ(ObserveAlert(*ws_, o, 3).status().code(), StatusCode::kInvalidInput);
  o = Obs("input.brightness", Level::kWarn);
  o.model_name.clear();
  EXPECT_EQ(ObserveAlert(*ws_, o, 3).status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(Rows(), 0u);
}

TEST_F(AlertsTest, AcknowledgeThenResolve) {
  const int64_t id = Observe(Obs("service.error_rate", Level::kEscalate, 0.2)).alert.id;
  auto acked = AcknowledgeAlert(*ws_, id, "ana", "looking at the load balancer");
  ASSERT_TRUE(acked.ok()) << acked.status().ToString();
  EXPECT_EQ(acked->state, kAlertAcknowledged);
  EXPECT_EQ(acked->acked_by, "ana");
  EXPECT_FALSE(acked->acked_at.empty());
  EXPECT_EQ(acked->note, "looking at the load balancer");

  // The monitor keeps updating an acknowledged episode at its level.
  AlertChange c = Observe(Obs("service.error_rate", Level::kRetrain, 0.05));
  EXPECT_EQ(c.alert.state, kAlertAcknowledged);
  EXPECT_EQ(c.alert.windows, 2);

  auto resolved = ResolveAlert(*ws_, id, "bo", "restarted the pool");
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  EXPECT_EQ(resolved->state, kAlertResolved);
  EXPECT_EQ(resolved->resolved_by, "bo");
  EXPECT_EQ(resolved->acked_by, "ana");
  EXPECT_EQ(resolved->note, "looking at the load balancer; restarted the pool");
  EXPECT_EQ(AlertToJson(*GetAlert(*ws_, id)), AlertToJson(*resolved));

  // An open alert may be resolved directly, without a note.
  const int64_t other = Observe(Obs("input.contrast", Level::kWarn)).alert.id;
  auto direct = ResolveAlert(*ws_, other, "bo", "");
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(direct->note, "");
  EXPECT_EQ(direct->acked_by, "");
}

TEST_F(AlertsTest, InvalidTransitionsAreInvalidInputAndUnknownIdsNotFound) {
  const int64_t id = Observe(Obs("input.brightness", Level::kWarn)).alert.id;
  ASSERT_TRUE(AcknowledgeAlert(*ws_, id, "ana", "").ok());
  auto twice = AcknowledgeAlert(*ws_, id, "bo", "");
  EXPECT_EQ(twice.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(twice.status().message().find("already acknowledged (by ana"), std::string::npos)
      << twice.status().message();
  ASSERT_TRUE(ResolveAlert(*ws_, id, "ana", "").ok());
  for (auto* f : {&AcknowledgeAlert, &ResolveAlert}) {
    auto r = (*f)(*ws_, id, "bo", "again");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(
        r.status().message().find("alert #" + std::to_string(id) + " is already resolved (by ana"),
        std::string::npos)
        << r.status().message();
  }
  EXPECT_EQ(GetAlert(*ws_, id)->note, "");  // nothing was written
  EXPECT_EQ(AcknowledgeAlert(*ws_, 999, "ana", "").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ResolveAlert(*ws_, 999, "ana", "").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(GetAlert(*ws_, 999).status().message(), "no alert with id 999");
  EXPECT_EQ(SetAlertAction(*ws_, 999, "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(MarkAlertNotified(*ws_, 999, Level::kWarn, "").code(), StatusCode::kNotFound);
  const int64_t open = Observe(Obs("input.contrast", Level::kWarn)).alert.id;
  EXPECT_EQ(AcknowledgeAlert(*ws_, open, "", "").status().code(), StatusCode::kInvalidInput);
}

TEST_F(AlertsTest, ARiseAboveWhatWasAcknowledgedReopens) {
  const int64_t id = Observe(Obs("input.brightness", Level::kRetrain)).alert.id;
  ASSERT_TRUE(AcknowledgeAlert(*ws_, id, "ana", "retraining").ok());
  EXPECT_EQ(Observe(Obs("input.brightness", Level::kWarn)).alert.state, kAlertAcknowledged);
  AlertChange c = Observe(Obs("input.brightness", Level::kEscalate, 2.5));
  EXPECT_EQ(c.alert.state, kAlertOpen);
  EXPECT_EQ(c.alert.acked_by, "");
  EXPECT_NE(c.alert.note.find("reopened: the level rose to escalate after ana acknowledged it"),
            std::string::npos)
      << c.alert.note;
  auto freeze = PromotionFreeze(*ws_, "cars");
  ASSERT_TRUE(freeze.ok());
  ASSERT_TRUE(freeze->has_value());
  EXPECT_EQ((*freeze)->id, id);
}

TEST_F(AlertsTest, ListFiltersNewestFirst) {
  const int64_t a = Observe(Obs("input.brightness", Level::kWarn, 0.3, 1, "cars")).alert.id;
  const int64_t b = Observe(Obs("input.contrast", Level::kRetrain, 0.3, 1, "cars")).alert.id;
  const int64_t c = Observe(Obs("input.brightness", Level::kWarn, 0.3, 1, "bikes")).alert.id;
  const int64_t d = Observe(Obs("service.error_rate", Level::kEscalate, 0.3, 1, "cars")).alert.id;
  ASSERT_TRUE(AcknowledgeAlert(*ws_, b, "ana", "").ok());
  ASSERT_TRUE(ResolveAlert(*ws_, d, "ana", "").ok());
  auto ids = [&](const AlertFilter& f) {
    auto r = ListAlerts(*ws_, f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<int64_t> out;
    if (r.ok()) {
      for (const Alert& x : *r) out.push_back(x.id);
    }
    return out;
  };
  using V = std::vector<int64_t>;
  EXPECT_EQ(ids({}), (V{d, c, b, a}));
  EXPECT_EQ(ids({"cars", "", "", 0}), (V{d, b, a}));
  EXPECT_EQ(ids({"", "active", "", 0}), (V{c, b, a}));
  EXPECT_EQ(ids({"", kAlertOpen, "", 0}), (V{c, a}));
  EXPECT_EQ(ids({"", kAlertAcknowledged, "", 0}), (V{b}));
  EXPECT_EQ(ids({"", kAlertResolved, "", 0}), (V{d}));
  EXPECT_EQ(ids({"", "", "input.brightness", 0}), (V{c, a}));
  EXPECT_EQ(ids({"cars", "active", "input.brightness", 0}), (V{a}));
  EXPECT_EQ(ids({"", "", "", 2}), (V{d, c}));
  EXPECT_EQ(ids({"trucks", "", "", 0}), V{});
  auto bad = ListAlerts(*ws_, {"", "closed", "", 0});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(bad.status().message().find("'closed'"), std::string::npos);
  EXPECT_EQ(ListAlerts(*ws_, {"", "", "", -1}).status().code(), StatusCode::kInvalidInput);
}

TEST_F(AlertsTest, PromotionFreezeIsAnOpenEscalateAlert) {
  auto none = PromotionFreeze(*ws_, "cars");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  Observe(Obs("input.brightness", Level::kRetrain));
  EXPECT_FALSE(PromotionFreeze(*ws_, "cars")->has_value());  // retrain does not freeze
  AlertObservation predicted = Obs("input.contrast", Level::kEscalate);
  predicted.kind = kAlertPredicted;
  Observe(predicted);
  EXPECT_FALSE(PromotionFreeze(*ws_, "cars")->has_value());  // a prediction does not

  const int64_t id = Observe(Obs("service.latency_p95_ms", Level::kEscalate, 400)).alert.id;
  // Back below escalate, still unacknowledged: the freeze holds.
  Observe(Obs("service.latency_p95_ms", Level::kWarn, 210));
  auto frozen = PromotionFreeze(*ws_, "cars");
  ASSERT_TRUE(frozen.ok());
  ASSERT_TRUE(frozen->has_value());
  EXPECT_EQ((*frozen)->id, id);
  EXPECT_FALSE(PromotionFreeze(*ws_, "bikes")->has_value());
  ASSERT_TRUE(AcknowledgeAlert(*ws_, id, "ana", "").ok());
  EXPECT_FALSE(PromotionFreeze(*ws_, "cars")->has_value());
}

TEST_F(AlertsTest, NotifyWhenOpenedOrTheLevelRisesAboveWhatWasNotified) {
  AlertChange c = Observe(Obs("prediction.score", Level::kWarn));
  EXPECT_TRUE(c.opened);
  EXPECT_TRUE(c.level_rose);
  EXPECT_TRUE(c.should_notify());
  const int64_t id = c.alert.id;
  // Not notified yet: the level is still above anything notified.
  EXPECT_TRUE(Observe(Obs("prediction.score", Level::kWarn)).should_notify());
  ASSERT_TRUE(MarkAlertNotified(*ws_, id, Level::kWarn, "").ok());
  c = Observe(Obs("prediction.score", Level::kWarn));
  EXPECT_FALSE(c.opened);
  EXPECT_FALSE(c.level_rose);
  EXPECT_FALSE(c.should_notify());
  EXPECT_EQ(c.alert.notified_level, "warn");
  c = Observe(Obs("prediction.score", Level::kRetrain));
  EXPECT_TRUE(c.level_rose);
  EXPECT_TRUE(c.should_notify());
  // A failed notification is recorded with the level it was for.
  ASSERT_TRUE(MarkAlertNotified(*ws_, id, Level::kRetrain, "webhook x: HTTP 500").ok());
  EXPECT_EQ(GetAlert(*ws_, id)->notify_error, "webhook x: HTTP 500");
  EXPECT_EQ(GetAlert(*ws_, id)->notified_level, "retrain");
  EXPECT_FALSE(Observe(Obs("prediction.score", Level::kWarn)).should_notify());
  EXPECT_FALSE(Observe(Obs("prediction.score", Level::kRetrain)).should_notify());
  EXPECT_TRUE(Observe(Obs("prediction.score", Level::kEscalate)).level_rose);
  c = Observe(Obs("prediction.score", Level::kOk));
  EXPECT_FALSE(c.should_notify());
  ASSERT_TRUE(MarkAlertNotified(*ws_, id, Level::kEscalate, "").ok());
  EXPECT_EQ(GetAlert(*ws_, id)->notify_error, "");
}

TEST_F(AlertsTest, ActionIsSetAndTold) {
  const int64_t id = Observe(Obs("service.error_rate", Level::kEscalate)).alert.id;
  ASSERT_TRUE(SetAlertAction(*ws_, id, "rolled back cars production from 3 to 2").ok());
  Alert a = *GetAlert(*ws_, id);
  EXPECT_EQ(a.action, "rolled back cars production from 3 to 2");
  EXPECT_NE(a.message.find("service.error_rate"), std::string::npos);
  EXPECT_NE(a.message.find("Action: rolled back cars production from 3 to 2"), std::string::npos)
      << a.message;
}

TEST_F(AlertsTest, JsonHasEveryField) {
  Alert a = Observe(Obs("embedding.mmd", Level::kRetrain, 0.07)).alert;
  Json j = AlertToJson(a);
  for (const char* key : {"id",
                          "model",
                          "version",
                          "signal",
                          "kind",
                          "level",
                          "peak_level",
                          "state",
                          "statistic",
                          "value",
                          "threshold",
                          "window",
                          "windows",
                          "ok_windows",
                          "examples",
                          "message",
                          "action",
                          "opened_at",
                          "updated_at",
                          "acknowledged_at",
                          "acknowledged_by",
                          "resolved_at",
                          "resolved_by",
                          "note",
                          "notified_level",
                          "notify_error"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j.size(), 26u);
  EXPECT_EQ(j["level"], "retrain");
  EXPECT_EQ(j["model"], "cars");
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["window"]["end"], 2'000'000);
  EXPECT_EQ(j["window"]["n"], 200);
  EXPECT_EQ(j["examples"], Json({"00000000000000a1", "00000000000000a2"}));
}

TEST_F(AlertsTest, TwoMonitorsAtOnceOpenOneEpisode) {
  // Two workspaces: two connections, as two processes would have.
  auto other = Workspace::Open({dir_ / "ws"});
  ASSERT_TRUE(other.ok());
  constexpr int kEach = 15;
  std::atomic<int> opened{0}, failed{0};
  auto watch = [&](Workspace& ws) {
    for (int i = 0; i < kEach; ++i) {
      auto c = ObserveAlert(ws, Obs("input.sharpness", Level::kWarn), 3);
      if (!c.ok() || !c->has_value()) {
        ++failed;
      } else if ((*c)->opened) {
        ++opened;
      }
    }
  };
  std::thread t1(watch, std::ref(*ws_)), t2(watch, std::ref(**other));
  t1.join();
  t2.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(opened, 1);
  auto all = ListAlerts(*ws_, {});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().windows, 2 * kEach);
}

// ---- notification ----

// A webhook receiver on loopback: answers with status(attempt) (1-based)
// after `delay`, and keeps what it was sent.
class Receiver {
 public:
  explicit Receiver(std::function<int(int)> status,
                    std::chrono::milliseconds delay = std::chrono::milliseconds(0)) {
    server_.Post("/hooks/alerts",
                 [this, status, delay](const httplib::Request& req, httplib::Response& res) {
                   std::this_thread::sleep_for(delay);
                   int attempt = 0;
                   {
                     std::lock_guard lock(mu_);
                     bodies_.push_back(req.body);
                     content_type_ = req.get_header_value("Content-Type");
                     query_ = req.get_param_value("team");
                     attempt = static_cast<int>(bodies_.size());
                   }
                   res.status = status(attempt);
                   res.set_content(res.status < 300 ? "ok" : "no\nthanks", "text/plain");
                 });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 1000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hooks/alerts?team=vision";
  }
  std::vector<std::string> Bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::string ContentType() {
    std::lock_guard lock(mu_);
    return content_type_;
  }
  std::string Query() {
    std::lock_guard lock(mu_);
    return query_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::string content_type_, query_;
};

// A loopback port nobody listens on.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

Alert SampleAlert() {
  Alert a;
  a.id = 7;
  a.model_name = "cars";
  a.model_version = 3;
  a.signal = "input.brightness";
  a.kind = kAlertThreshold;
  a.level = Level::kRetrain;
  a.peak_level = Level::kRetrain;
  a.state = kAlertOpen;
  a.statistic = "psi";
  a.value = 0.31;
  a.threshold = 0.25;
  a.message = "cars@3: input.brightness psi 0.310 >= retrain 0.250";
  return a;
}

NotifyOptions Fast(const std::string& webhook, const std::string& command = "") {
  NotifyOptions o;
  o.webhook = webhook;
  o.command = command;
  o.retries = 3;
  o.backoff_ms = 5;
  o.timeout_ms = 2000;
  return o;
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(NotifyTest, WebhookPostsTheAlertJson) {
  Receiver r([](int) { return 200; });
  ASSERT_TRUE(NotifyAlert(SampleAlert(), Fast(r.Url())).ok());
  ASSERT_EQ(r.Bodies().size(), 1u);
  auto j = ParseJson(r.Bodies()[0], "webhook body");
  ASSERT_TRUE(j.ok()) << r.Bodies()[0];
  EXPECT_EQ(*j, AlertToJson(SampleAlert()));
  EXPECT_EQ((*j)["id"], 7);
  EXPECT_EQ((*j)["level"], "retrain");
  EXPECT_EQ(r.ContentType(), "application/json");
  EXPECT_EQ(r.Query(), "vision");
}

TEST(NotifyTest, WebhookIsRetriedWithBackoffUntilItAnswers) {
  Receiver r([](int attempt) { return attempt <= 2 ? 500 : 200; });
  NotifyOptions o = Fast(r.Url());
  o.backoff_ms = 40;
  const auto start = std::chrono::steady_clock::now();
  Status s = NotifyAlert(SampleAlert(), o);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(r.Bodies().size(), 3u);
  EXPECT_GE(took, std::chrono::milliseconds(40 + 80));  // doubled after each failure
}

TEST(NotifyTest, WebhookThatKeepsFailingNamesTheAttemptsAndTheAnswer) {
  Receiver r([](int) { return 500; });
  NotifyOptions o = Fast(r.Url());
  o.retries = 2;
  Status s = NotifyAlert(SampleAlert(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(r.Bodies().size(), 3u);
  EXPECT_EQ(s.message(), "webhook " + r.Url() + ": 3 attempts, last: HTTP 500: no thanks");
}

TEST(NotifyTest, TooManyRequestsIsRetriedButAClientErrorIsNot) {
  Receiver busy([](int attempt) { return attempt == 1 ? 429 : 204; });
  EXPECT_TRUE(NotifyAlert(SampleAlert(), Fast(busy.Url())).ok());
  EXPECT_EQ(busy.Bodies().size(), 2u);

  Receiver wrong([](int) { return 400; });
  Status s = NotifyAlert(SampleAlert(), Fast(wrong.Url()));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(wrong.Bodies().size(), 1u);
  EXPECT_NE(s.message().find("1 attempt, last: HTTP 400"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("(not retried)"), std::string::npos) << s.message();
}

TEST(NotifyTest, UnreachableWebhookNamesTheUrl) {
  const std::string url = "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/hook";
  NotifyOptions o = Fast(url);
  o.retries = 1;
  Status s = NotifyAlert(SampleAlert(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("webhook " + url + ": 2 attempts, last: no answer"), std::string::npos)
      << s.message();
}

TEST(NotifyTest, SlowWebhookTimesOut) {
  Receiver r([](int) { return 200; }, std::chrono::milliseconds(800));
  NotifyOptions o = Fast(r.Url());
  o.retries = 0;
  o.timeout_ms = 100;
  const auto start = std::chrono::steady_clock::now();
  Status s = NotifyAlert(SampleAlert(), o);
  EXPECT_FALSE(s.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(700));
  EXPECT_NE(s.message().find("1 attempt, last: no answer"), std::string::npos) << s.message();
}

TEST(NotifyTest, BadWebhookUrlsAreInvalidInput) {
  for (const char* url : {"ftp://x/y", "127.0.0.1:80/x", "http:///x"}) {
    Status s = NotifyAlert(SampleAlert(), Fast(url));
    EXPECT_EQ(s.code(), StatusCode::kInvalidInput) << url << " " << s.ToString();
    EXPECT_NE(s.message().find(url), std::string::npos) << s.message();
  }
}

TEST(NotifyTest, CommandReadsTheJsonOnStdin) {
  TempDir dir;
  const auto file = dir / "alert.json";
  Status s = NotifyAlert(SampleAlert(), Fast("", "cat > '" + file.string() + "'"));
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto j = ParseJson(ReadFile(file), "alert.json");
  ASSERT_TRUE(j.ok()) << ReadFile(file);
  EXPECT_EQ(*j, AlertToJson(SampleAlert()));
}

TEST(NotifyTest, FailingCommandReportsItsExitCodeAndWhatItSaid) {
  Status s = NotifyAlert(SampleAlert(), Fast("", "echo 'mail server down' >&2; exit 3"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "command 'echo 'mail server down' >&2; exit 3': exit code 3: mail server "
            "down");
  s = NotifyAlert(SampleAlert(), Fast("", "no-such-notifier-xyz"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("exit code 127"), std::string::npos) << s.message();
}

TEST(NotifyTest, CommandThatIgnoresStdinIsFine) {
  // A large alert, and a command that exits without reading it: the writer
  // meets a closed pipe, which must not kill the test process.
  Alert big = SampleAlert();
  big.message = std::string(4 << 20, 'x');
  EXPECT_TRUE(NotifyAlert(big, Fast("", "true")).ok());
  EXPECT_FALSE(NotifyAlert(big, Fast("", "exit 5")).ok());
}

TEST(NotifyTest, HangingCommandIsKilledAtTheTimeout) {
  NotifyOptions o = Fast("", "sleep 30");
  o.timeout_ms = 200;
  const auto start = std::chrono::steady_clock::now();
  Status s = NotifyAlert(SampleAlert(), o);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("command 'sleep 30': killed after 200 ms"), std::string::npos)
      << s.message();
}

TEST(NotifyTest, BothTargetsRunAndBothFailuresAreTold) {
  TempDir dir;
  Receiver r([](int) { return 503; });
  NotifyOptions o = Fast(r.Url(), "cat > '" + (dir / "a.json").string() + "'; exit 2");
  o.retries = 0;
  Status s = NotifyAlert(SampleAlert(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("HTTP 503"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("exit code 2"), std::string::npos) << s.message();
  EXPECT_TRUE(ParseJson(ReadFile(dir / "a.json"), "a.json").ok());  // the command ran too
}

TEST(NotifyTest, OptionsComeFromThePolicy) {
  MonitorPolicy p = DefaultMonitorPolicy();
  p.webhook = "http://h/x";
  p.command = "logger";
  p.notify_retries = 1;
  p.notify_backoff_ms = 20;
  p.notify_timeout_ms = 300;
  NotifyOptions o = NotifyOptionsFrom(p);
  EXPECT_EQ(o.webhook, "http://h/x");
  EXPECT_EQ(o.command, "logger");
  EXPECT_EQ(o.retries, 1);
  EXPECT_EQ(o.backoff_ms, 20);
  EXPECT_EQ(o.timeout_ms, 300);
  EXPECT_TRUE(NotifyAlert(SampleAlert(), NotifyOptions{"", "", 0, 0, 1}).ok());  // nothing to do
}

}  // namespace
}  // namespace detops
