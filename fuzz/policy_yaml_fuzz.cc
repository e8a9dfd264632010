// Promotion policies: the YAML of `detops registry policy set` and of a
// policy file, as ParsePromotionPolicy reads it; what it accepts then runs
// through the gate check, which must hold for any parsed policy.

#include "fuzz_util.h"
#include "registry/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto policy = detops::ParsePromotionPolicy(detops::fuzz::AsText(data, size), "policy.yaml");
  if (!policy.ok()) return 0;
  detops::GateInputs in;
  in.candidate = {{"map50", 0.5}, {"recall", 0.4}, {"latency_p95_ms", 20}};
  std::map<std::string, double> production = {{"map50", 0.45}, {"map", 0.3}};
  in.production = production;
  in.production_ref = "car@2";
  in.dataset_validation = "passed";
  for (const detops::TargetPolicy* t : {&policy->staging, &policy->production}) {
    detops::GateReport r = detops::CheckGates(*t, in);
    (void)detops::GateReportFromJson(detops::GateReportToJson(r));
  }
  return 0;
}
