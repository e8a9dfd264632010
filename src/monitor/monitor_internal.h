#pragma once
// How prediction records map to their columns. Internal to the monitor
// module.

#include <cstdint>
#include <string>
#include <vector>

#include "monitor/evaluator.h"
#include "monitor/monitor.h"
#include "monitor/rollout.h"

namespace detops {

// ISO-8601 UTC with milliseconds of a Unix time in milliseconds.
std::string IsoFromMs(int64_t ms);

Json ProfileToJson(const LiveImageProfile& p);
LiveImageProfile ProfileFromJson(const Json& j);
// Rounded to 4 decimals; a non-finite value becomes null (read back as NaN).
Json EmbeddingToJson(const std::vector<float>& embedding);
std::vector<float> EmbeddingFromJson(const Json& j);
Json DetectionsToJson(const std::vector<LoggedDetection>& detections);
std::vector<LoggedDetection> DetectionsFromJson(const Json& j);

// Predictions of `model_name` after the cursor (at_ms, id), up to until_ms,
// oldest first; at most `limit`. Rows inside a `skip` span (its version,
// logged in its time range) are left out.
Result<std::vector<StoredPrediction>> ListPredictionsAfter(
    Workspace& ws, const std::string& model_name, int64_t after_ms, const std::string& after_id,
    int64_t until_ms, int limit, const std::vector<CandidateSpan>& skip = {});

// The latest feedback of the newest `limit` labelled predictions of one
// version logged in [from_ms, until_ms], oldest first (the monitor's
// accuracy, and each arm of a rollout).
Result<std::vector<LabelledPrediction>> RecentLabelled(Workspace& ws, const std::string& model,
                                                       int version, int64_t from_ms,
                                                       int64_t until_ms, int limit);
int64_t NowMs();

}  // namespace detops
