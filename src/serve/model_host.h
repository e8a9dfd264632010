#pragma once
// The model a server runs, and hot swap: a watcher thread polls the
// registry alias; when it points at another version, that version is
// loaded and warmed up in the background, then swapped in through one
// pointer. Requests hold the model they started on (shared_ptr), so those
// in flight finish on the old one, which is released with its last user.
// Internal to serve. Thread-safe.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ml/ml.h"
#include "registry/registry.h"

namespace detops::serve {

// One version, loaded `replicas` times: Detector::Predict is safe from one
// thread at a time, so each batch worker takes a free replica.
struct LoadedModel {
  ModelVersion version;
  std::vector<std::unique_ptr<Detector>> replicas;
  std::vector<std::unique_ptr<std::mutex>> busy;  // one per replica

  // Runs `fn(detector)` on a free replica (waits for one if all are busy).
  template <typename Fn>
  auto WithReplica(Fn&& fn) {
    for (size_t i = 0; i < replicas.size(); ++i) {
      std::unique_lock lock(*busy[i], std::try_to_lock);
      if (lock.owns_lock()) return fn(*replicas[i]);
    }
    // More callers than replicas: wait for the first.
    std::lock_guard lock(*busy[0]);
    return fn(*replicas[0]);
  }
};

struct ModelHostOptions {
  std::string name;                  // registry model name
  std::string alias = "production";  // followed for hot swap ...
  int version = 0;                   // ... unless a fixed version is given
  DetectorOptions detector;
  int replicas = 1;    // copies of the model (one per batch worker)
  int poll_ms = 1000;  // how often the alias is read
};

class ModelHost {
 public:
  // Loads the current version (NotFound when the alias is unset and no
  // version is given) and starts the watcher when following an alias.
  // `on_swap` is called after each swap (from the watcher thread) with the
  // old and the new version.
  static Result<std::unique_ptr<ModelHost>> Start(
      Workspace& ws, const ModelHostOptions& options,
      std::function<void(const ModelVersion* from, const ModelVersion& to)> on_swap = {});
  ~ModelHost();  // stops the watcher

  std::shared_ptr<LoadedModel> Current() const;
  // Loads failed since start (a version whose weights do not load keeps the
  // old model serving).
  int64_t load_failures() const { return load_failures_.load(); }
  // Checks the alias now instead of waiting for the next poll.
  void CheckNow();

 private:
  ModelHost(Workspace& ws, ModelHostOptions options) : ws_(ws), options_(std::move(options)) {}
  Result<std::shared_ptr<LoadedModel>> Load(const ModelVersion& v);
  void Watch();

  Workspace& ws_;
  const ModelHostOptions options_;
  std::unique_ptr<Registry> registry_;
  std::function<void(const ModelVersion*, const ModelVersion&)> on_swap_;
  mutable std::mutex mu_;  // guards current_, stop_, check_now_
  std::condition_variable wake_;
  std::shared_ptr<LoadedModel> current_;
  bool stop_ = false, check_now_ = false;
  std::atomic<int64_t> load_failures_{0};
  std::thread watcher_;
};

}  // namespace detops::serve
