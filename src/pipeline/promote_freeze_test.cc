// An escalated alert freezes automatic promotion to production until a
// person acknowledges it; a person's own promotion goes ahead, noted.

#include <gtest/gtest.h>

#include "monitor/alerts.h"
#include "monitor/synthetic_traffic.h"
#include "pipeline/pipeline.h"
#include "registry/registry.h"
#include "testing/testutil.h"

namespace detops {
namespace {

class PromoteFreezeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SyntheticModel m;
    m.versions = 3;
    m.classes = {"dent"};
    m.metrics = {{"map50", 0.9}, {"map", 0.6}, {"recall", 0.9}, {"latency_p95_ms", 5}};
    m.dataset_version = "cars@1";
    m.dataset_validation = "passed";
    auto opened = OpenSyntheticWorkspace(dir_.path(), m);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ws_ = std::move(opened->ws);
  }

  Result<PromoteJobResult> Promote(int version, bool automatic) {
    PromoteJobOptions o;
    o.model = "cars@" + std::to_string(version);
    o.to = kProduction;
    o.force = true;
    o.reason = "test";
    o.actor = automatic ? "trigger" : "alice";
    o.automatic = automatic;
    return RunPromoteJob(*ws_, o);
  }

  testing::TempDir dir_;
  std::unique_ptr<Workspace> ws_;
};

TEST_F(PromoteFreezeTest, EscalateFreezesAutomaticPromotionUntilAcknowledged) {
  AlertObservation obs;
  obs.model_name = "cars";
  obs.model_version = 1;
  obs.signal = "input.brightness";
  obs.statistic = "psi";
  obs.level = Level::kEscalate;
  obs.value = 3.1;
  obs.threshold = 2;
  auto alert = ObserveAlert(*ws_, obs, 3);
  ASSERT_TRUE(alert.ok() && alert->has_value());
  const int64_t id = (*alert)->alert.id;

  auto refused = Promote(2, /*automatic=*/true);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("frozen by alert #" + std::to_string(id)),
            std::string::npos)
      << refused.status().message();

  auto by_person = Promote(2, /*automatic=*/false);
  ASSERT_TRUE(by_person.ok()) << by_person.status().ToString();
  EXPECT_TRUE(by_person->applied);
  ASSERT_FALSE(by_person->notes.empty());
  EXPECT_NE(by_person->notes.back().find("frozen"), std::string::npos);

  ASSERT_TRUE(AcknowledgeAlert(*ws_, id, "alice", "seen").ok());
  auto automatic = Promote(3, /*automatic=*/true);
  ASSERT_TRUE(automatic.ok()) << automatic.status().ToString();
  EXPECT_TRUE(automatic->applied);
}

}  // namespace
}  // namespace detops
