// The runs query language of `detops runs list --filter ... --sort ...` (and
// the tracker's ListRuns): the input's first line is the filter, the rest the
// sort; the filter is also evaluated on a few runs.

#include "fuzz_util.h"
#include "track/track.h"

namespace {

std::vector<detops::RunInfo> SampleRuns() {
  std::vector<detops::RunInfo> runs(3);
  runs[0].id = "0123456789ab";
  runs[0].name = "car-n";
  runs[0].kind = "train";
  runs[0].status = detops::RunStatus::kFinished;
  runs[0].created_at = "2026-12-01T10:00:00.000Z";
  runs[0].ended_at = "2026-12-01T10:30:00.000Z";
  runs[0].dataset_version = "car@3";
  runs[0].params = {{"epochs", "50"}, {"lr", "0.01"}, {"variant", "n"}};
  runs[0].tags = {{"forced", "true"}, {"note", "a b"}};
  runs[0].final_metrics = {{"map50", 0.62}, {"map", 0.41}, {"latency_p95_ms", 12.5}};
  runs[0].env.host = "gpu-1";
  runs[0].env.threads = 8;
  runs[0].seq = 1;
  runs[1] = runs[0];
  runs[1].id = "ba9876543210";
  runs[1].status = detops::RunStatus::kFailed;
  runs[1].params["epochs"] = "x";
  runs[1].final_metrics.erase("map50");
  runs[1].parent_run = "0123456789ab";
  runs[1].seq = 2;
  runs[2].id = "ffffffffffff";
  runs[2].kind = "eval";
  runs[2].seq = 3;
  return runs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<detops::RunInfo> runs = SampleRuns();
  std::string_view text = detops::fuzz::AsText(data, size);
  size_t nl = text.find('\n');
  auto filter = detops::ParseRunFilter(text.substr(0, nl));
  if (filter.ok()) {
    for (const detops::RunInfo& r : runs) (void)filter->Matches(r);
  }
  if (nl != std::string_view::npos) (void)detops::ParseRunSort(text.substr(nl + 1));
  return 0;
}
