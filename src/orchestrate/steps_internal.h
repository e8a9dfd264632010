#pragma once
// Each built-in step's definition, one per file (step_*.cc). Internal to
// orchestrate.

#include "orchestrate/steps.h"

namespace detops {

StepType ImportStep();          // step_data.cc
StepType ValidateStep();        // step_data.cc
StepType FeedbackExportStep();  // step_data.cc
StepType TrainStep();           // step_train.cc
StepType EvaluateStep();        // step_model.cc
StepType RegisterStep();        // step_model.cc
StepType PromoteStep();         // step_promote.cc
StepType ShellStep();           // step_shell.cc

}  // namespace detops
