// Alerts: one row per episode in table alerts, and their notification by
// webhook and command.

#include "monitor/alerts.h"

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

extern char** environ;

namespace detops {
namespace {

constexpr size_t kMaxExamples = 10;

constexpr const char* kColumns =
    "id, model_name, model_version, signal, kind, level, peak_level, state, statistic, value, "
    "threshold, window_start_ms, window_end_ms, window_n, windows, ok_windows, examples_json, "
    "message, action, opened_at, updated_at, acked_at, acked_by, resolved_at, resolved_by, note, "
    "notified_level, notify_error";

std::string Ref(int64_t id) { return "alert #" + std::to_string(id); }

// Every column of `a` in kColumns order.
std::vector<SqlValue> Values(const Alert& a) {
  // Ids with invalid UTF-8 are replaced, not thrown about.
  const std::string examples =
      Json(a.example_ids).dump(-1, ' ', false, Json::error_handler_t::replace);
  return {a.id,
          a.model_name,
          int64_t{a.model_version},
          a.signal,
          a.kind,
          std::string(LevelName(a.level)),
          std::string(LevelName(a.peak_level)),
          a.state,
          a.statistic,
          a.value,
          a.threshold,
          a.window_start_ms,
          a.window_end_ms,
          a.window_n,
          int64_t{a.windows},
          int64_t{a.ok_windows},
          examples,
          a.message,
          a.action,
          a.opened_at,
          a.updated_at,
          a.acked_at,
          a.acked_by,
          a.resolved_at,
          a.resolved_by,
          a.note,
          a.notified_level,
          a.notify_error};
}

Result<Alert> RowToAlert(const SqlRow& r) {
  Alert a;
  a.id = r.Int(0);
  const std::string what = Ref(a.id);
  a.model_name = r.Text(1);
  a.model_version = static_cast<int>(r.Int(2));
  a.signal = r.Text(3);
  a.kind = r.Text(4);
  auto level = ParseLevel(r.Text(5));
  auto peak = ParseLevel(r.Text(6));
  if (!level || !peak) {
    return Status::Corruption(what + ": unknown level '" + r.Text(level ? 6 : 5) + "'");
  }
  a.level = *level;
  a.peak_level = *peak;
  a.state = r.Text(7);
  a.statistic = r.Text(8);
  a.value = r.Real(9);
  a.threshold = r.Real(10);
  a.window_start_ms = r.Int(11);
  a.window_end_ms = r.Int(12);
  a.window_n = r.Int(13);
  a.windows = static_cast<int>(r.Int(14));
  a.ok_windows = static_cast<int>(r.Int(15));
  ASSIGN_OR_RETURN(Json examples, ParseJson(r.Text(16), what + " examples_json"));
  if (!examples.is_array()) return Status::Corruption(what + " examples_json: not an array");
  for (const Json& e : examples) {
    if (e.is_string()) a.example_ids.push_back(e.get<std::string>());
  }
  a.message = r.Text(17);
  a.action = r.Text(18);
  a.opened_at = r.Text(19);
  a.updated_at = r.Text(20);
  a.acked_at = r.Text(21);
  a.acked_by = r.Text(22);
  a.resolved_at = r.Text(23);
  a.resolved_by = r.Text(24);
  a.note = r.Text(25);
  a.notified_level = r.Text(26);
  a.notify_error = r.Text(27);
  return a;
}

Status Insert(Database& db, const Alert& a) {
  std::string marks = "?";
  for (size_t i = 1; i < Values(a).size(); ++i) marks += ", ?";
  return db.Exec("INSERT INTO alerts (" + std::string(kColumns) + ") VALUES (" + marks + ")",
                 Values(a));
}

Status Update(Database& db, const Alert& a) {
  // Every column but the id, then the id for WHERE.
  std::string sets;
  std::string columns = kColumns;
  size_t start = columns.find(',') + 2;
  while (start < columns.size()) {
    size_t end = columns.find(',', start);
    if (end == std::string::npos) end = columns.size();
    sets += (sets.empty() ? "" : ", ") + columns.substr(start, end - start) + " = ?";
    start = end + 2;
  }
  std::vector<SqlValue> values = Values(a);
  values.erase(values.begin());
  values.emplace_back(a.id);
  return db.Exec("UPDATE alerts SET " + sets + " WHERE id = ?", values);
}

Result<Alert> Load(Database& db, int64_t id) {
  ASSIGN_OR_RETURN(auto rows,
                   db.Query("SELECT " + std::string(kColumns) + " FROM alerts WHERE id = ?", {id}));
  if (rows.empty()) return Status::NotFound("no alert with id " + std::to_string(id));
  return RowToAlert(rows[0]);
}

std::string AppendNote(const std::string& note, const std::string& more) {
  if (more.empty()) return note;
  return note.empty() ? more : note + "; " + more;
}

std::vector<std::string> FirstExamples(const std::vector<std::string>& ids) {
  return {ids.begin(), ids.begin() + std::min(ids.size(), kMaxExamples)};
}

Status CheckObservation(const AlertObservation& obs) {
  if (obs.model_name.empty()) return Status::InvalidInput("alert observation: no model name");
  if (!FindSignal(obs.signal)) {
    return Status::InvalidInput("alert observation: unknown signal '" + obs.signal + "'");
  }
  if (obs.kind != kAlertThreshold && obs.kind != kAlertPredicted && obs.kind != kAlertAction) {
    return Status::InvalidInput("alert observation: unknown kind '" + obs.kind +
                                "' (threshold, predicted or action)");
  }
  return Status::Ok();
}

// The latest window's facts, shared by opening and updating.
void TakeWindow(Alert& a, const AlertObservation& obs) {
  a.model_version = obs.model_version;
  a.statistic = obs.statistic;
  a.level = obs.level;
  a.peak_level = std::max(a.peak_level, obs.level);
  a.value = obs.value;
  a.threshold = obs.threshold;
  a.window_start_ms = obs.window_start_ms;
  a.window_end_ms = obs.window_end_ms;
  a.window_n = obs.window_n;
  if (!obs.example_ids.empty()) a.example_ids = FirstExamples(obs.example_ids);
  if (!obs.message.empty()) a.message = obs.message;
  if (!obs.action.empty()) a.action = obs.action;
}

Alert OpenEpisode(int64_t id, const AlertObservation& obs, const std::string& now) {
  Alert a;
  a.id = id;
  a.model_name = obs.model_name;
  a.signal = obs.signal;
  a.kind = obs.kind;
  a.peak_level = obs.level;
  a.state = kAlertOpen;
  a.windows = 1;
  a.ok_windows = 0;
  a.opened_at = now;
  a.updated_at = now;
  TakeWindow(a, obs);
  return a;
}

// Applies one window to an unresolved episode; true when it resolved it.
bool Continue(Alert& a, const AlertObservation& obs, int resolve_after, const std::string& now) {
  a.updated_at = now;
  if (obs.level > Level::kOk) {
    // An acknowledgement covers the level a person saw: a rise past it (to
    // escalate, say) needs a person again, or the promotion freeze would
    // never hold for it.
    if (a.state == kAlertAcknowledged && obs.level > a.peak_level) {
      a.state = kAlertOpen;
      a.note =
          AppendNote(a.note, std::string("reopened: the level rose to ") + LevelName(obs.level) +
                                 " after " + a.acked_by + " acknowledged it");
      a.acked_at.clear();
      a.acked_by.clear();
    }
    TakeWindow(a, obs);
    a.windows += 1;
    a.ok_windows = 0;
    return false;
  }
  a.ok_windows += 1;
  if (a.ok_windows < resolve_after) return false;
  a.state = kAlertResolved;
  a.resolved_at = now;
  a.resolved_by = "monitor";
  a.note = AppendNote(a.note, "recovered after " + std::to_string(a.ok_windows) + " ok windows");
  return true;
}

// Moves an alert to acknowledged or resolved under the write lock.
Result<Alert> Transition(Workspace& ws, int64_t id, const std::string& to, const std::string& actor,
                         const std::string& note) {
  if (actor.empty()) {
    return Status::InvalidInput(Ref(id) + ": an actor is needed to mark it " + to);
  }
  Database& db = ws.db();
  Alert a;
  RETURN_IF_ERROR(db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(a, Load(db, id));
    if (a.state == kAlertResolved) {
      return Status::InvalidInput(Ref(id) + " is already resolved (by " + a.resolved_by + " at " +
                                  a.resolved_at + "); it cannot be " + to);
    }
    if (to == kAlertAcknowledged && a.state == kAlertAcknowledged) {
      return Status::InvalidInput(Ref(id) + " is already acknowledged (by " + a.acked_by + " at " +
                                  a.acked_at + ")");
    }
    const std::string now = NowIso8601();
    a.state = to;
    a.updated_at = now;
    if (to == kAlertAcknowledged) {
      a.acked_at = now;
      a.acked_by = actor;
    } else {
      a.resolved_at = now;
      a.resolved_by = actor;
    }
    a.note = AppendNote(a.note, note);
    return Update(db, a);
  }));
  return a;
}

// ---- notification ----

struct Url {
  std::string base;  // scheme://host[:port]
  std::string path;  // /path?query
};

Result<Url> SplitUrl(const std::string& url) {
  const size_t scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return Status::InvalidInput("webhook '" + url + "': must start with http:// or https://");
  }
  const std::string rest = url.substr(scheme_end + 3);
  const size_t path_at = rest.find_first_of("/?#");
  const std::string host = rest.substr(0, path_at);
  if (host.empty()) return Status::InvalidInput("webhook '" + url + "': no host");
  Url u{scheme + "://" + host, "/"};
  if (path_at != std::string::npos) {
    std::string path = rest.substr(path_at);
    path = path.substr(0, path.find('#'));  // a fragment is not sent
    u.path = !path.empty() && path[0] == '/' ? path : "/" + path;
  }
  return u;
}

std::string OneLine(std::string text, size_t max) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
  if (text.size() > max) text = "..." + text.substr(text.size() - max);
  return text;
}

Status PostWebhook(const std::string& url, const std::string& body, const NotifyOptions& o) {
  ASSIGN_OR_RETURN(Url u, SplitUrl(url));
  const auto timeout = std::chrono::milliseconds(std::max(1, o.timeout_ms));
  const int attempts = 1 + std::max(0, o.retries);
  int backoff_ms = std::max(0, o.backoff_ms);
  std::string last;
  int made = 0;
  while (made < attempts) {
    if (made > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms *= 2;
    }
    ++made;
    httplib::Client client(u.base);
    client.set_connection_timeout(timeout);
    client.set_read_timeout(timeout);
    client.set_write_timeout(timeout);
    httplib::Result res = client.Post(u.path, body, "application/json");
    if (!res) {
      last = "no answer (" + httplib::to_string(res.error()) + ")";
      continue;  // connection refused, timeout: worth another try
    }
    if (res->status >= 200 && res->status < 300) return Status::Ok();
    last = "HTTP " + std::to_string(res->status);
    if (!res->body.empty()) last += ": " + OneLine(res->body, 120);
    // 429 and 5xx may pass; another 4xx says the request itself is wrong.
    if (res->status != 429 && res->status < 500) {
      last += " (not retried)";
      break;
    }
  }
  return Status::Unavailable("webhook " + url + ": " + std::to_string(made) +
                             (made == 1 ? " attempt" : " attempts") + ", last: " + last);
}

// Closes a file descriptor once.
void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Spawns /bin/sh -c `command` with its stdin on `in_fd` and its stdout and
// stderr on `out_fd`, in its own process group (so that a timeout kills what
// it started too), with SIGPIPE at its default.
Result<pid_t> Spawn(const std::string& command, int in_fd, int out_fd) {
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_adddup2(&files, in_fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&files, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&files, out_fd, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, pipe_default;
  sigemptyset(&none);
  sigemptyset(&pipe_default);
  sigaddset(&pipe_default, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &pipe_default);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::string sh = "sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/bin/sh", &files, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Status::IOError(std::string("cannot start /bin/sh: ") + std::strerror(rc));
  return pid;
}

// Feeds `input` to `in_fd` and collects the tail of `out_fd` until both are
// done or `deadline`; false on the deadline. SIGPIPE is blocked meanwhile
// in this thread only: a command that does not read its stdin must not kill
// the process that notifies.
bool Exchange(int& in_fd, int& out_fd, const std::string& input, std::string& output,
              std::chrono::steady_clock::time_point deadline) {
  constexpr size_t kTail = 2000;
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ::fcntl(in_fd, F_SETFL, ::fcntl(in_fd, F_GETFL) | O_NONBLOCK);
  size_t sent = 0;
  if (input.empty()) CloseFd(in_fd);
  bool in_time = true;
  while (in_fd >= 0 || out_fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      in_time = false;
      break;
    }
    pollfd fds[2];
    nfds_t n = 0;
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (::poll(fds, n, static_cast<int>(left)) <= 0) continue;  // EINTR or the deadline
    for (nfds_t i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_fd) {
        ssize_t w = ::write(in_fd, input.data() + sent, input.size() - sent);
        if (w > 0) sent += static_cast<size_t>(w);
        // EPIPE: the command closed its stdin; it need not read it all.
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == input.size()) CloseFd(in_fd);
      } else {
        char buf[4096];
        ssize_t r = ::read(out_fd, buf, sizeof buf);
        if (r > 0) {
          output.append(buf, static_cast<size_t>(r));
          if (output.size() > kTail) output.erase(0, output.size() - kTail);
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          CloseFd(out_fd);
        }
      }
    }
  }
  if (!sigismember(&old, SIGPIPE)) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return in_time;
}

// Waits for `pid` until `deadline`, then kills its process group. Returns
// the wait status, or -1 when it could not be learnt.
int Reap(pid_t pid, std::chrono::steady_clock::time_point deadline, bool& killed) {
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() >= deadline && !killed) {
      ::kill(-pid, SIGKILL);
      killed = true;
      while ((r = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
      }
      return r == pid ? status : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status RunCommand(const std::string& command, const std::string& input, int timeout_ms) {
  const std::string what = "command '" + command + "'";
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) {
    return Status::IOError(what + ": pipe: " + std::strerror(errno));
  }
  if (::pipe2(out, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(in[0]);
    ::close(in[1]);
    return Status::IOError(what + ": pipe: " + std::strerror(e));
  }
  auto pid = Spawn(command, in[0], out[1]);
  ::close(in[0]);
  ::close(out[1]);
  int in_fd = in[1], out_fd = out[0];
  if (!pid.ok()) {
    CloseFd(in_fd);
    CloseFd(out_fd);
    return pid.status().WithContext(what);
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(1, timeout_ms));
  std::string output;
  bool killed = !Exchange(in_fd, out_fd, input, output, deadline);
  CloseFd(in_fd);
  CloseFd(out_fd);
  if (killed) ::kill(-*pid, SIGKILL);
  const int status = Reap(*pid, deadline, killed);
  const std::string said = OneLine(output, 300);
  const std::string tail = said.empty() ? "" : ": " + said;
  if (killed) {
    return Status::Unavailable(what + ": killed after " + std::to_string(timeout_ms) +
                               " ms (notify timeout)" + tail);
  }
  if (status == -1) return Status::IOError(what + ": its exit status is unknown");
  if (WIFSIGNALED(status)) {
    return Status::IOError(what + ": killed by signal " + std::to_string(WTERMSIG(status)) + tail);
  }
  if (WEXITSTATUS(status) != 0) {
    return Status::IOError(what + ": exit code " + std::to_string(WEXITSTATUS(status)) + tail);
  }
  return Status::Ok();
}

}  // namespace

Result<std::optional<AlertChange>> ObserveAlert(Workspace& ws, const AlertObservation& obs,
                                                int resolve_after_ok_windows) {
  RETURN_IF_ERROR(CheckObservation(obs));
  const int resolve_after = std::max(1, resolve_after_ok_windows);
  Database& db = ws.db();
  std::optional<AlertChange> change;
  // Read and write under one write lock, so that two monitors watching the
  // same model never open two episodes of one signal.
  RETURN_IF_ERROR(db.InTransaction([&]() -> Status {
    change.reset();
    ASSIGN_OR_RETURN(auto rows,
                     db.Query("SELECT " + std::string(kColumns) +
                                  " FROM alerts WHERE model_name = ? AND signal = ? AND "
                                  "kind = ? AND state <> ? ORDER BY id DESC LIMIT 1",
                              {obs.model_name, obs.signal, obs.kind, std::string(kAlertResolved)}));
    const std::string now = NowIso8601();
    AlertChange c;
    if (rows.empty()) {
      if (obs.level == Level::kOk) return Status::Ok();
      ASSIGN_OR_RETURN(auto next, db.Query("SELECT COALESCE(MAX(id), 0) + 1 FROM alerts"));
      c.alert = OpenEpisode(next.at(0).Int(0), obs, now);
      c.opened = true;
      RETURN_IF_ERROR(Insert(db, c.alert));
    } else {
      ASSIGN_OR_RETURN(c.alert, RowToAlert(rows[0]));
      c.resolved = Continue(c.alert, obs, resolve_after, now);
      RETURN_IF_ERROR(Update(db, c.alert));
    }
    const Level notified = ParseLevel(c.alert.notified_level).value_or(Level::kOk);
    c.level_rose = obs.level > Level::kOk && c.alert.level > notified;
    change = std::move(c);
    return Status::Ok();
  }));
  return change;
}

Result<Alert> AcknowledgeAlert(Workspace& ws, int64_t id, const std::string& actor,
                               const std::string& note) {
  return Transition(ws, id, kAlertAcknowledged, actor, note);
}

Result<Alert> ResolveAlert(Workspace& ws, int64_t id, const std::string& actor,
                           const std::string& note) {
  return Transition(ws, id, kAlertResolved, actor, note);
}

Status SetAlertAction(Workspace& ws, int64_t id, const std::string& action) {
  Database& db = ws.db();
  return db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(Alert a, Load(db, id));
    a.action = action;
    if (!action.empty()) a.message += (a.message.empty() ? "" : " Action: ") + action;
    a.updated_at = NowIso8601();
    return Update(db, a);
  });
}

Status MarkAlertNotified(Workspace& ws, int64_t id, Level level, const std::string& error) {
  Database& db = ws.db();
  return db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(Alert a, Load(db, id));
    a.notified_level = LevelName(level);
    a.notify_error = error;
    return Update(db, a);
  });
}

Result<Alert> GetAlert(Workspace& ws, int64_t id) { return Load(ws.db(), id); }

Result<std::vector<Alert>> ListAlerts(Workspace& ws, const AlertFilter& filter) {
  std::string sql = "SELECT " + std::string(kColumns) + " FROM alerts WHERE 1 = 1";
  std::vector<SqlValue> params;
  if (!filter.model_name.empty()) {
    sql += " AND model_name = ?";
    params.emplace_back(filter.model_name);
  }
  if (filter.state == "active") {
    sql += " AND state IN (?, ?)";
    params.emplace_back(std::string(kAlertOpen));
    params.emplace_back(std::string(kAlertAcknowledged));
  } else if (filter.state == kAlertOpen || filter.state == kAlertAcknowledged ||
             filter.state == kAlertResolved) {
    sql += " AND state = ?";
    params.emplace_back(filter.state);
  } else if (!filter.state.empty()) {
    return Status::InvalidInput("unknown alert state '" + filter.state +
                                "' (open, acknowledged, resolved or active)");
  }
  if (!filter.signal.empty()) {
    sql += " AND signal = ?";
    params.emplace_back(filter.signal);
  }
  if (filter.limit < 0) {
    return Status::InvalidInput("alert limit must not be negative, got " +
                                std::to_string(filter.limit));
  }
  sql += " ORDER BY id DESC";
  if (filter.limit > 0) {
    sql += " LIMIT ?";
    params.emplace_back(int64_t{filter.limit});
  }
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(sql, params));
  std::vector<Alert> out;
  out.reserve(rows.size());
  for (const SqlRow& r : rows) {
    ASSIGN_OR_RETURN(Alert a, RowToAlert(r));
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::optional<Alert>> PromotionFreeze(Workspace& ws, const std::string& model_name) {
  // A prediction is not yet a fact: only threshold and action alerts freeze.
  ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT " + std::string(kColumns) +
                                                " FROM alerts WHERE model_name = ? AND state = ? "
                                                "AND peak_level = ? AND kind <> ? "
                                                "ORDER BY id DESC LIMIT 1",
                                            {model_name, std::string(kAlertOpen),
                                             std::string(LevelName(Level::kEscalate)),
                                             std::string(kAlertPredicted)}));
  if (rows.empty()) return std::optional<Alert>();
  ASSIGN_OR_RETURN(Alert a, RowToAlert(rows[0]));
  return std::optional<Alert>(std::move(a));
}

Json AlertToJson(const Alert& a) {
  return {{"id", a.id},
          {"model", a.model_name},
          {"version", a.model_version},
          {"signal", a.signal},
          {"kind", a.kind},
          {"level", LevelName(a.level)},
          {"peak_level", LevelName(a.peak_level)},
          {"state", a.state},
          {"statistic", a.statistic},
          {"value", a.value},
          {"threshold", a.threshold},
          {"window", {{"start", a.window_start_ms}, {"end", a.window_end_ms}, {"n", a.window_n}}},
          {"windows", a.windows},
          {"ok_windows", a.ok_windows},
          {"examples", a.example_ids},
          {"message", a.message},
          {"action", a.action},
          {"opened_at", a.opened_at},
          {"updated_at", a.updated_at},
          {"acknowledged_at", a.acked_at},
          {"acknowledged_by", a.acked_by},
          {"resolved_at", a.resolved_at},
          {"resolved_by", a.resolved_by},
          {"note", a.note},
          {"notified_level", a.notified_level},
          {"notify_error", a.notify_error}};
}

NotifyOptions NotifyOptionsFrom(const MonitorPolicy& policy) {
  return {policy.webhook, policy.command, policy.notify_retries, policy.notify_backoff_ms,
          policy.notify_timeout_ms};
}

Status NotifyAlert(const Alert& alert, const NotifyOptions& options) {
  try {
    const std::string body =
        AlertToJson(alert).dump(-1, ' ', false, Json::error_handler_t::replace);
    Status hook, cmd;
    if (!options.webhook.empty()) hook = PostWebhook(options.webhook, body, options);
    if (!options.command.empty())
      cmd = RunCommand(options.command, body + "\n", options.timeout_ms);
    if (!hook.ok() && !cmd.ok()) return Status(hook.code(), hook.message() + "; " + cmd.message());
    return hook.ok() ? cmd : hook;
  } catch (const std::exception& e) {
    return Status::Internal("notifying " + Ref(alert.id) + ": " + e.what());
  }
}

}  // namespace detops
