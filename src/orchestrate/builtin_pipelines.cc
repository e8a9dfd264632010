// The pipelines that ship with detops. `detops pipelines cat retrain`
// prints one, as a start for a file of your own.

#include "orchestrate/runner.h"

namespace detops {

const std::map<std::string, std::string>& BuiltinPipelines() {
  static const std::map<std::string, std::string> pipelines = {{"retrain", R"yaml(
name: retrain
description: >-
  Retrains a model on the latest labelled data plus the feedback on its
  predictions, warm-started from production; gates the candidate on the
  test split and on held-out feedback of the new conditions; releases it
  through a canary. What the triggers start unless told otherwise.
params:
  model: null          # the registry model (required)
  dataset: ""          # default: the dataset of the model's production version
  source: ""           # a folder to add first (the inbox trigger sets it)
  minutes: 3           # training budget
  epochs: 0            # 0: as many as the budget holds
  init: production     # warm start; none: from scratch
  shift: ""            # drifted monitor signals (the drift trigger sets them)
  holdout: 0.3         # share of the feedback images held out to gate on
  rollout: canary      # none | shadow | canary
  stages: "0.1,0.5"    # canary shares of live requests
  min_requests: 50     # candidate requests per canary stage
  stage_seconds: 0
  timeout_seconds: 1800
  rollout_policy: ""   # the canary's checks as JSON, inline or a file (monitor/rollout.h)
  policy: ""           # promotion policy YAML ("" = the default gates)
steps:
  - id: import
    uses: import
    if: ${params.source}
    with:
      dataset: ${params.dataset}
      source: ${params.source}
      append: true
  - id: check-import   # bad data stops here, and its version is never built on
    uses: validate
    if: ${params.source}
    with:
      dataset: ${steps.import.outputs.dataset}
  - id: feedback
    uses: feedback-export
    needs: [check-import]
    with:
      model: ${params.model}
      dataset: ${params.dataset}
      holdout: ${params.holdout}
  - id: validate
    uses: validate
    with:
      dataset: ${steps.feedback.outputs.dataset}
  - id: train
    uses: train
    retries: 1
    backoff_seconds: 10
    with:
      dataset: ${steps.validate.outputs.dataset}
      model: ${params.model}
      init: ${params.init}
      minutes: ${params.minutes}
      epochs: ${params.epochs}
      shift: ${params.shift}
  - id: register
    uses: register
    with:
      run: ${steps.train.outputs.run}
      name: ${params.model}
  - id: promote
    uses: promote
    with:
      model: ${steps.register.outputs.model}
      to: production
      extra_tests: ${steps.feedback.outputs.holdout}
      rollout: ${params.rollout}
      stages: ${params.stages}
      min_requests: ${params.min_requests}
      stage_seconds: ${params.stage_seconds}
      timeout_seconds: ${params.timeout_seconds}
      rollout_policy: ${params.rollout_policy}
      policy: ${params.policy}
)yaml"}};
  return pipelines;
}

}  // namespace detops
