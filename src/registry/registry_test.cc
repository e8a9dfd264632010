// Registry: versions and references, aliases with audit, rollback, the
// policy file and the gate check, and promotions racing from several
// connections (each its own SQLite connection, as separate processes are).

#include "registry/registry.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "testing/testutil.h"

namespace detops {
namespace {

using testing::TempDir;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(*ws);
    auto r = Registry::Open(*ws_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    reg_ = std::move(*r);
    testing::WriteText(dir_ / "w.pt", "weights-1");
  }

  NewModelVersion Spec(const std::string& name, double map50 = 0.6) {
    NewModelVersion n;
    n.name = name;
    n.run_id = "0123456789ab";
    n.weights = dir_ / "w.pt";
    n.profile_json = R"({"images": 10})";
    n.spec = {"detops-anchor-free", "n", 320, {"scratch", "dent"}};
    n.metrics = {{"map50", map50}, {"map", map50 / 2}, {"recall", 0.7}, {"latency_p95_ms", 20}};
    n.dataset_version = "cars@1";
    n.dataset_validation = "passed";
    n.created_by = "test";
    return n;
  }

  ModelVersion Register(const std::string& name, double map50 = 0.6) {
    auto v = reg_->Register(Spec(name, map50));
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : ModelVersion();
  }

  Status Promote(const std::string& name, int version, const std::string& alias = kProduction) {
    auto now = reg_->AliasVersion(name, alias);
    if (!now.ok()) return now.status();
    AliasChange c;
    c.name = name;
    c.alias = alias;
    c.to_version = version;
    c.expected_from = *now;
    c.actor = "tester";
    c.reason = "because";
    return reg_->SetAlias(c).status();
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<Registry> reg_;
};

TEST_F(RegistryTest, VersionsNumberPerNameAndKeepWhatWasRegistered) {
  ModelVersion a1 = Register("cars");
  ModelVersion a2 = Register("cars", 0.7);
  ModelVersion b1 = Register("roads");
  EXPECT_EQ(a1.Ref(), "cars@1");
  EXPECT_EQ(a2.Ref(), "cars@2");
  EXPECT_EQ(b1.Ref(), "roads@1");
  auto got = reg_->Get("cars@1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->spec.classes, (std::vector<std::string>{"scratch", "dent"}));
  EXPECT_EQ(got->spec.imgsz, 320);
  EXPECT_DOUBLE_EQ(got->metrics.at("map50"), 0.6);
  EXPECT_EQ(got->dataset_version, "cars@1");
  // The weights and profile are blobs, readable after the source is gone.
  std::filesystem::remove(dir_ / "w.pt");
  EXPECT_EQ(*ws_->blobs().Get(got->weights_blob), "weights-1");
  EXPECT_EQ(*reg_->Profile(*got), R"({"images": 10})");
  // NAME alone is the latest version.
  EXPECT_EQ(reg_->Get("cars")->version, 2);
  auto all = reg_->List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[2].Ref(), "roads@1");
  EXPECT_EQ(reg_->List("cars")->size(), 2u);
}

TEST_F(RegistryTest, BadReferencesAndNamesGetClearErrors) {
  Register("cars");
  EXPECT_EQ(reg_->Get("cars@9").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->Get("trucks").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->Get("cars@production").status().code(), StatusCode::kNotFound);
  for (const char* bad : {"cars@", "cars@0", "cars@1x", "cars@canary", "../x", "", "a b"}) {
    auto r = reg_->Get(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput) << bad;
  }
  NewModelVersion n = Spec("cars");
  n.weights = dir_ / "missing.pt";
  auto r = reg_->Register(n);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find("missing.pt"), std::string::npos);
  n = Spec("../etc");
  EXPECT_EQ(reg_->Register(n).status().code(), StatusCode::kInvalidInput);
}

TEST_F(RegistryTest, AliasesMoveWithAnAuditEntryEach) {
  Register("cars");
  Register("cars");
  ASSERT_TRUE(Promote("cars", 1, kStaging).ok());
  ASSERT_TRUE(Promote("cars", 1).ok());
  ASSERT_TRUE(Promote("cars", 2, kStaging).ok());
  EXPECT_EQ(reg_->Get("cars@1")->aliases, (std::vector<std::string>{"production"}));
  EXPECT_EQ(reg_->Get("cars@2")->aliases, (std::vector<std::string>{"staging"}));
  EXPECT_EQ(reg_->Get("cars@production")->version, 1);
  auto h = reg_->History("cars");
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[2].alias, "staging");
  EXPECT_EQ((*h)[2].from_version, 1);
  EXPECT_EQ((*h)[2].to_version, 2);
  EXPECT_EQ((*h)[2].actor, "tester");
  EXPECT_EQ((*h)[2].reason, "because");
  EXPECT_FALSE((*h)[0].from_version.has_value());
  // A version that does not exist cannot hold an alias.
  EXPECT_EQ(Promote("cars", 7).code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->History("cars")->size(), 3u);
}

TEST_F(RegistryTest, ChangeAgainstAStaleViewIsAConflictAndWritesNothing) {
  Register("cars");
  Register("cars");
  ASSERT_TRUE(Promote("cars", 1).ok());
  AliasChange c;
  c.name = "cars";
  c.alias = kProduction;
  c.to_version = 2;
  c.expected_from = std::nullopt;  // gates were checked when production was empty
  auto r = reg_->SetAlias(c);
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(r.status().message().find("moved from none to version 1"), std::string::npos);
  EXPECT_EQ(reg_->Get("cars@production")->version, 1);
  EXPECT_EQ(reg_->History("cars")->size(), 1u);
}

TEST_F(RegistryTest, RollbackWalksBackThroughPromotions) {
  for (int i = 0; i < 3; ++i) Register("cars");
  EXPECT_EQ(reg_->Rollback("cars", kProduction, "op", "x").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(Promote("cars", 1).ok());
  EXPECT_EQ(reg_->Rollback("cars", kProduction, "op", "x").status().code(),
            StatusCode::kNotFound);  // nothing earlier
  ASSERT_TRUE(Promote("cars", 2).ok());
  ASSERT_TRUE(Promote("cars", 3).ok());
  auto r = reg_->Rollback("cars", kProduction, "op", "bad night");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->from_version, 3);
  EXPECT_EQ(r->to_version, 2);
  EXPECT_EQ(reg_->Get("cars@production")->version, 2);
  // A second rollback goes further back, not forth to 3.
  ASSERT_TRUE(reg_->Rollback("cars", kProduction, "op", "still bad").ok());
  EXPECT_EQ(reg_->Get("cars@production")->version, 1);
  EXPECT_EQ(reg_->Rollback("cars", kProduction, "op", "x").status().code(), StatusCode::kNotFound);
  auto h = reg_->History("cars");
  ASSERT_EQ(h->size(), 5u);
  EXPECT_EQ(h->back().action, "rollback");
  EXPECT_EQ(h->back().reason, "still bad");
}

TEST_F(RegistryTest, ParallelPromotionsFromSeparateConnectionsKeepAConsistentChain) {
  constexpr int kWorkers = 6, kEach = 8;
  for (int i = 0; i < kWorkers; ++i) Register("cars");
  std::vector<std::thread> pool;
  std::atomic<int> applied{0}, conflicts{0}, other{0};
  for (int w = 0; w < kWorkers; ++w) {
    pool.emplace_back([&, w] {
      auto ws = Workspace::Open({dir_ / "ws"});  // its own connection
      if (!ws.ok()) return ++other, void();
      auto reg = Registry::Open(**ws);
      if (!reg.ok()) return ++other, void();
      for (int k = 0; k < kEach; ++k) {
        auto now = (*reg)->AliasVersion("cars", kProduction);
        if (!now.ok()) {
          ++other;
          continue;
        }
        AliasChange c{"cars", kProduction, w + 1, *now, "worker" + std::to_string(w),
                      "race", false,       {}};
        auto r = (*reg)->SetAlias(c);
        if (r.ok()) {
          ++applied;
        } else if (r.status().code() == StatusCode::kAlreadyExists) {
          ++conflicts;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(applied + conflicts, kWorkers * kEach);
  auto h = reg_->History("cars");
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(static_cast<int>(h->size()), applied.load());
  // Each entry starts where the previous one ended, and the alias is where
  // the last one left it.
  std::optional<int> at;
  for (const AuditEntry& e : *h) {
    EXPECT_EQ(e.from_version, at) << "seq " << e.seq;
    at = e.to_version;
  }
  EXPECT_EQ(reg_->Get("cars@production")->version, *at);
}

TEST(PolicyTest, DefaultsAndOverridesPerTarget) {
  auto p = ParsePromotionPolicy(R"(
floors: {map50: 0.5}
max_latency_p95_ms: 100
production:
  floors: {test/map50: 0.7, recall: 0.6}
  require_validation: false
)",
                                "policy.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->staging.floors, (std::map<std::string, double>{{"map50", 0.5}}));
  EXPECT_EQ(p->production.floors, (std::map<std::string, double>{{"map50", 0.7}, {"recall", 0.6}}));
  EXPECT_DOUBLE_EQ(p->staging.max_latency_p95_ms, 100);
  EXPECT_DOUBLE_EQ(p->production.max_latency_p95_ms, 100);
  EXPECT_TRUE(p->staging.require_validation);
  EXPECT_FALSE(p->production.require_validation);
  // Untouched keys keep the defaults.
  EXPECT_EQ(p->production.max_regression, DefaultPromotionPolicy().production.max_regression);
  auto empty = ParsePromotionPolicy("", "empty.yaml");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->production.floors, DefaultPromotionPolicy().production.floors);
}

TEST(PolicyTest, MistakesNameTheFileLineAndKey) {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"floors: {map50: 0.5}\nflor: {}\n", "p.yaml:2: unknown key 'flor'"},
      {"floors: {map50: high}\n", "p.yaml:1: floors.map50: expected a number, got 'high'"},
      {"max_latency_p95_ms: -3\n", "must not be negative"},
      {"require_validation: maybe\n", "expected true or false"},
      {"production: 3\n", "production must be a mapping"},
      {"production: {staging: {}}\n", "unknown key 'staging'"},
      {"floors: [1, 2]\n", "floors must be a mapping"},
      {"floors: {map50: 0.5\n", "p.yaml"},
      {"- a\n- b\n", "a policy must be a mapping"},
  };
  for (const Case& c : cases) {
    auto p = ParsePromotionPolicy(c.yaml, "p.yaml");
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidInput) << c.yaml;
    EXPECT_NE(p.status().message().find(c.expect), std::string::npos)
        << c.yaml << " -> " << p.status().message();
  }
}

TEST(GateTest, EachGatePassesOrFailsWithItsMargin) {
  TargetPolicy t;
  t.floors = {{"map50", 0.5}, {"recall", 0.4}};
  t.max_regression = {{"map50", 0.125}};
  t.max_latency_p95_ms = 50;
  t.require_validation = true;
  GateInputs in;
  in.candidate = {{"map50", 0.61}, {"recall", 0.35}, {"latency_p95_ms", 60}};
  in.production = std::map<std::string, double>{{"map50", 0.75}};
  in.production_ref = "cars@1";
  in.dataset_validation = "failed";
  GateReport r = CheckGates(t, in);
  EXPECT_FALSE(r.passed());
  ASSERT_EQ(r.checks.size(), 5u);
  auto find = [&](const std::string& g) {
    for (const GateCheck& c : r.checks)
      if (c.gate == g) return c;
    ADD_FAILURE() << "no gate " << g;
    return GateCheck{};
  };
  EXPECT_TRUE(find("floor map50").passed);
  EXPECT_NEAR(find("floor map50").margin, 0.11, 1e-12);
  EXPECT_FALSE(find("floor recall").passed);
  EXPECT_NEAR(find("floor recall").margin, -0.05, 1e-12);
  GateCheck reg = find("regression map50");
  EXPECT_FALSE(reg.passed);  // 0.61 < 0.75 - 0.125
  EXPECT_NEAR(reg.margin, -0.015, 1e-12);
  EXPECT_NE(reg.required.find("cars@1"), std::string::npos);
  EXPECT_FALSE(find("latency p95").passed);
  EXPECT_NEAR(find("latency p95").margin, -10, 1e-12);
  EXPECT_FALSE(find("dataset validation").passed);

  // Exactly on a limit passes; no production means no regression gate.
  in.candidate = {{"map50", 0.625}, {"recall", 0.4}, {"latency_p95_ms", 50}};
  in.dataset_validation = "warnings";  // findings to read, not a failure
  EXPECT_TRUE(CheckGates(t, in).passed());
  in.production.reset();
  GateReport alone = CheckGates(t, in);
  EXPECT_TRUE(alone.passed());
  EXPECT_EQ(alone.checks.size(), 4u);
  // A metric the policy needs but the candidate lacks fails.
  in.candidate.erase("recall");
  EXPECT_FALSE(CheckGates(t, in).passed());
  // The report survives its JSON form (stored in the audit log).
  GateReport back = GateReportFromJson(GateReportToJson(r));
  ASSERT_EQ(back.checks.size(), r.checks.size());
  EXPECT_EQ(back.checks[2].gate, r.checks[2].gate);
  EXPECT_EQ(back.passed(), r.passed());
}

}  // namespace
}  // namespace detops
