#pragma once
// Alerts: one stored row per episode. A signal that stays beyond its
// threshold over many windows is one alert that updates (value, level,
// window, examples), not one per window. State: open -> acknowledged ->
// resolved; a person acknowledges and resolves (`detops alerts ack|resolve`),
// and the monitor resolves an episode itself once its signal has been ok
// for the policy's resolve_after_ok_windows.
//
// Kinds: "threshold" (a level was reached), "predicted" (the trend will
// reach `retrain` within the horizon; resolved as "superseded" once the
// threshold alert opens) and "action" (the monitor acted: a rollback).
//
// Notifications: a webhook (HTTP POST of AlertToJson, retried with
// backoff) and/or a command (the JSON on stdin), whenever an episode opens
// or its level rises. Table alerts (migration 6).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/core.h"
#include "monitor/policy.h"
#include "store/store.h"

namespace detops {

inline constexpr const char* kAlertThreshold = "threshold";
inline constexpr const char* kAlertPredicted = "predicted";
inline constexpr const char* kAlertAction = "action";

inline constexpr const char* kAlertOpen = "open";
inline constexpr const char* kAlertAcknowledged = "acknowledged";
inline constexpr const char* kAlertResolved = "resolved";

struct Alert {
  int64_t id = 0;
  std::string model_name;
  int model_version = 0;
  std::string signal;               // a MonitorSignals() name
  std::string kind;                 // kAlertThreshold, kAlertPredicted, kAlertAction
  Level level = Level::kWarn;       // now
  Level peak_level = Level::kWarn;  // highest in the episode
  std::string state;                // kAlertOpen, kAlertAcknowledged, kAlertResolved
  std::string statistic;            // "psi", "p95_ms", ...
  double value = 0;                 // latest
  double threshold = 0;             // of the level reached (predicted: the retrain threshold)
  int64_t window_start_ms = 0, window_end_ms = 0, window_n = 0;  // latest window
  int windows = 1;                       // windows that reached a level in this episode
  int ok_windows = 0;                    // consecutive ok windows since the last one that did
  std::vector<std::string> example_ids;  // prediction ids that show it
  std::string message;                   // one human sentence
  std::string action;                    // what the monitor did ("rolled back ...")
  std::string opened_at, updated_at, acked_at, acked_by, resolved_at, resolved_by, note;
  std::string notified_level;  // the level last notified ("" = never)
  std::string notify_error;    // the last notification failure ("" = none)
};

// What one window says about one signal.
struct AlertObservation {
  std::string model_name;
  int model_version = 0;
  std::string signal, kind = kAlertThreshold, statistic;
  Level level = Level::kOk;
  double value = 0, threshold = 0;
  int64_t window_start_ms = 0, window_end_ms = 0, window_n = 0;
  std::vector<std::string> example_ids;  // at most 10 are kept
  std::string message;
  std::string action;
};

struct AlertChange {
  Alert alert;
  bool opened = false;      // a new episode
  bool level_rose = false;  // the level is higher than any notified before
  bool resolved = false;    // this observation resolved it
  bool should_notify() const { return opened || level_rose; }
};

// Records one window's observation for (model, signal, kind), in one
// transaction:
//  - level > ok, no unresolved episode: opens one (opened = true);
//  - level > ok, an unresolved episode: updates it (value, level, window,
//    examples, windows + 1, ok_windows = 0; peak_level = max); an
//    acknowledged episode that rises above its peak is open again (an
//    acknowledged warn must not hide a later escalation);
//  - level ok, an unresolved episode: ok_windows + 1, and resolves it (by
//    "monitor", note "recovered after N ok windows") once ok_windows
//    reaches `resolve_after_ok_windows`;
//  - level ok, no episode: nothing (nullopt).
Result<std::optional<AlertChange>> ObserveAlert(Workspace& ws, const AlertObservation& obs,
                                                int resolve_after_ok_windows);

// NotFound for an unknown id; InvalidInput when the transition is not
// allowed (ack of a resolved alert; resolve of a resolved one).
Result<Alert> AcknowledgeAlert(Workspace& ws, int64_t id, const std::string& actor,
                               const std::string& note);
Result<Alert> ResolveAlert(Workspace& ws, int64_t id, const std::string& actor,
                           const std::string& note);
// Sets action (and appends to message) of an alert, e.g. after a rollback.
Status SetAlertAction(Workspace& ws, int64_t id, const std::string& action);
// Records the outcome of notifying an alert at its current level.
Status MarkAlertNotified(Workspace& ws, int64_t id, Level level, const std::string& error);

Result<Alert> GetAlert(Workspace& ws, int64_t id);
struct AlertFilter {
  std::string model_name;  // "" = every model
  std::string state;       // "" = every state; "active" = open or acknowledged
  std::string signal;      // "" = every signal
  int limit = 0;           // 0 = no limit
};
// Newest first.
Result<std::vector<Alert>> ListAlerts(Workspace& ws, const AlertFilter& filter);
// The open (unacknowledged) escalate-level alert that freezes automatic
// promotion of `model_name`, if any.
Result<std::optional<Alert>> PromotionFreeze(Workspace& ws, const std::string& model_name);

// {"id", "model", "version", "signal", "kind", "level", "peak_level",
//  "state", "statistic", "value", "threshold", "window": {"start", "end",
//  "n"}, "windows", "ok_windows", "examples", "message", "action",
//  "opened_at", "updated_at", "acknowledged_at", "acknowledged_by",
//  "resolved_at", "resolved_by", "note", "notified_level", "notify_error"}
Json AlertToJson(const Alert& alert);

struct NotifyOptions {
  std::string webhook;  // http://host:port/path or https://...
  std::string command;  // run by /bin/sh -c, alert JSON on stdin
  int retries = 3;
  int backoff_ms = 500;
  int timeout_ms = 5000;
};
NotifyOptions NotifyOptionsFrom(const MonitorPolicy& policy);

// Sends `alert` to the webhook and runs the command. The webhook is retried
// (after backoff_ms, doubled each time) on a connection failure, a timeout,
// 429 or 5xx; other 4xx are final. Returns the last error, naming the
// target, the attempts and the answer ("webhook http://...: 3 attempts,
// last: HTTP 500"). Blocks: call it off any request path.
Status NotifyAlert(const Alert& alert, const NotifyOptions& options);

}  // namespace detops
