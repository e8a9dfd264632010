#pragma once
// The controller: runs a model's monitor and its triggers continuously and
// executes the pipelines they start, one at a time, unattended
// (`detops controller`, or `detops serve --controller` in the server's
// process).
//
// Triggers, each decision recorded in trigger_events with its reason:
//  - inbox: a complete batch in <workspace>/inbox/NAME/ (inbox.h) starts the
//    pipeline with source = the claimed folder, dataset = NAME; the batch is
//    settled to inbox/.done or inbox/.failed when the run ends, and a batch
//    that fails validation raises a data.validation alert naming the failed
//    expectations (nothing is trained).
//  - drift: an alert of the model on an input, embedding or prediction
//    signal at level `retrain` starts the pipeline with shift = the drifted
//    input signals; at `escalate` nothing is started (a person decides, and
//    automatic promotion is frozen).
//  - decay: an accuracy.* alert (accuracy from feedback) at `retrain`.
//  - schedule: a cron expression (cron.h), UTC.
// De-duplication: every alert is decided once; a drift or decay trigger
// starts nothing while a pipeline of the model runs or within the cooldown
// after the last one started, so one drift episode (several signals, many
// windows) starts one retraining.
// Runs whose runner died (kill -9, reboot) are resumed.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/core.h"
#include "orchestrate/inbox.h"
#include "orchestrate/runner.h"
#include "store/store.h"

namespace detops {

struct ControllerConfig {
  std::string model;                          // the registry model it keeps healthy (required)
  std::string pipeline = "retrain";           // file or built-in name
  std::map<std::string, std::string> params;  // passed to every run (model is added)
  bool drift = true;
  bool decay = true;
  double cooldown_seconds = 3600;
  bool inbox = true;
  double inbox_quiet_seconds = 30;
  std::string schedule;        // cron; "" = none
  bool monitor = true;         // run the monitor here (the server's own when in serve)
  std::string monitor_policy;  // YAML; "" = the default policy
  double tick_seconds = 2;
};

// YAML with the keys above (params: a mapping). Unknown keys and wrong
// types are errors naming the file, line and key.
// `model` may be left out when `default_model` is given (serve --controller
// knows the model it serves).
Result<ControllerConfig> LoadControllerConfig(const std::filesystem::path& file,
                                              const std::string& default_model = "");
Result<ControllerConfig> ParseControllerConfig(const std::string& yaml, const std::string& label,
                                               const std::string& default_model = "");

struct ControllerOptions {
  std::string actor = "controller";
  int threads = 2;
  BuildInfo build;
  std::string serving_precision;                   // for the monitor's embeddings ("" = unknown)
  std::function<void(const std::string&)> on_log;  // one line per decision and step log line
};

struct TriggerEvent {
  int64_t id = 0;
  std::string at;
  int64_t at_ms = 0;
  std::string trigger;  // inbox | drift | decay | schedule
  std::string model_name;
  std::string dedup_key;  // alert:<id>, inbox:<folder>, cron:<unix s>
  std::string decision;   // started | skipped | refused
  std::string reason;
  int64_t pipeline_run = 0;
  Json detail = Json::object();
};
Result<std::vector<TriggerEvent>> ListTriggerEvents(Workspace& ws, const std::string& model,
                                                    int limit);
Json TriggerEventToJson(const TriggerEvent& e);

class Controller {
 public:
  static Result<std::unique_ptr<Controller>> Open(Workspace& ws, ControllerConfig config,
                                                  ControllerOptions options);
  ~Controller();  // stops a running pipeline (it stays resumable) and joins

  // One pass: orphaned runs, the monitor, every trigger. Returns the
  // decisions made in this pass.
  Result<std::vector<TriggerEvent>> Tick(int64_t now_ms);
  // Ticks every tick_seconds until `stop`.
  void Run(const std::atomic<bool>& stop);
  // Whether a pipeline is queued or running here.
  bool Busy() const;
  const ControllerConfig& config() const { return config_; }

 private:
  Controller(Workspace& ws, ControllerConfig config, ControllerOptions options);
  struct Job {
    int64_t run = 0;
    std::filesystem::path inbox_batch;  // settled when the run ends
    std::string dataset;
  };
  Status MonitorTick(int64_t now_ms);
  Status AlertTriggers(int64_t now_ms, std::vector<TriggerEvent>& out);
  Status InboxTrigger(int64_t now_ms, std::vector<TriggerEvent>& out);
  Status ScheduleTrigger(int64_t now_ms, std::vector<TriggerEvent>& out);
  Status ResumeOrphans(std::vector<TriggerEvent>& out);
  Result<TriggerEvent> Record(TriggerEvent e);
  Result<int64_t> Start(const std::string& trigger, const std::string& detail,
                        std::map<std::string, std::string> params, Job job);
  void Worker();
  void Finished(const Job& job, const Result<PipelineRunInfo>& result);
  void Log(const std::string& line) const;

  Workspace& ws_;
  ControllerConfig config_;
  ControllerOptions options_;
  std::unique_ptr<class Monitor> monitor_;
  std::unique_ptr<InboxWatcher> inbox_;
  int64_t schedule_from_s_ = 0;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool running_job_ = false, stop_worker_ = false;
  std::atomic<bool> stop_pipeline_{false};
  std::thread worker_;
};

}  // namespace detops
