// How a job's run ends when the job fails.

#include "pipeline/jobs_internal.h"

namespace detops {

void MarkRunFailed(Tracker& tracker, const std::string& run, const Status& why) {
  (void)tracker.SetTags(run, {{kFailureReasonTag, why.ToString()}});
  (void)tracker.SetStatus(run, RunStatus::kFailed);
}

}  // namespace detops
