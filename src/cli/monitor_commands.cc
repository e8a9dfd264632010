// detops monitor status | report | watch

#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/output.h"
#include "monitor/evaluator.h"

namespace detops::cli {
namespace {

// The signals a report shows as columns, with their short headers.
const std::pair<const char*, const char*> kReportColumns[] = {
    {"input.brightness", "BRIGHT"},       {"input.contrast", "CONTR"},
    {"input.sharpness", "SHARP"},         {"embedding.mmd", "EMB-MMD"},
    {"prediction.score", "SCORE"},        {"prediction.detections_per_image", "DETS/IMG"},
    {"service.latency_p95_ms", "P95-MS"}, {"service.error_rate", "ERR"},
    {"accuracy.map50", "MAP50-DROP"},
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Fixed(double v, int digits = 3) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "2026-12-07 10:04:05" (UTC) of Unix ms.
std::string TimeOf(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// "90s", "30m", "2h", "7d" before now, or an ISO date-time; InvalidInput
// naming the flag otherwise.
Result<int64_t> ParseSince(const std::string& text, int64_t now_ms) {
  if (text.empty()) return int64_t{0};
  const char unit = text.back();
  const int64_t scale = unit == 's'   ? 1000
                        : unit == 'm' ? 60'000
                        : unit == 'h' ? 3'600'000
                        : unit == 'd' ? 86'400'000
                                      : 0;
  if (scale) {
    try {
      size_t used = 0;
      const double v = std::stod(text.substr(0, text.size() - 1), &used);
      if (used == text.size() - 1 && v >= 0) return now_ms - static_cast<int64_t>(v * scale);
    } catch (const std::exception&) {
    }
  }
  std::tm tm{};
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) >= 3) {
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<int64_t>(timegm(&tm)) * 1000;
  }
  return Status::InvalidInput("--since '" + text +
                              "': expected a duration (90s, 30m, 2h, 7d) or a date "
                              "(2026-12-07 or 2026-12-07T10:00:00)");
}

// One signal's cell: its value, marked with the level when above ok.
std::string Cell(const WindowReport& w, const char* signal) {
  const SignalValue* s = w.Find(signal);
  if (!s || !s->scored) return "-";
  const int digits = s->statistic == "p95_ms" ? 1 : 3;
  std::string c = Fixed(s->value, digits);
  if (s->level != Level::kOk) c += std::string(" ") + LevelName(s->level);
  return c;
}

// Every signal of one window, with thresholds, tests and notes.
void PrintSignals(const WindowReport& w) {
  Table t({"SIGNAL", "STATISTIC", "VALUE", "LEVEL", "THRESHOLD", "LIVE", "REFERENCE", "P", "N",
           "NOTE"});
  for (const SignalValue& s : w.signals) {
    if (!s.scored) {
      t.Add({s.signal, s.statistic, "-", "-", "-", "-", "-", "-", std::to_string(s.n), s.note});
      continue;
    }
    std::string live = Fixed(s.live);
    if (s.low >= 0) live += " [" + Fixed(s.low) + ", " + Fixed(s.high) + "]";
    t.Add({s.signal, s.statistic, Fixed(s.value), LevelName(s.level),
           std::isfinite(s.threshold) ? Fixed(s.threshold) : "off", live, Fixed(s.reference),
           s.p_value >= 0 ? Fixed(s.p_value, 4) : "-", std::to_string(s.n), s.note});
  }
  std::cout << t.Render();
}

void PrintKpis(const WindowReport& w) {
  const ResourceSample& r = w.service.resources;
  std::cout << "  inspections " << w.kpis.inspections << ", automated "
            << Percent(w.kpis.automation_rate) << ", manual review "
            << Percent(w.kpis.manual_review_rate) << ", " << Fixed(w.kpis.inspections_per_hour, 0)
            << " per hour, labelled " << Percent(w.kpis.labelled_share) << "\n"
            << "  latency p50/p95/p99 " << Fixed(w.latency_p50_ms, 1) << " / "
            << Fixed(w.latency_p95_ms, 1) << " / " << Fixed(w.latency_p99_ms, 1) << " ms";
  if (w.service.known) {
    std::cout << ", " << Fixed(w.service.throughput_rps, 1) << " requests/s, 5xx "
              << w.service.errors_5xx << ", 4xx " << w.service.errors_4xx << ", log drops "
              << w.service.log_dropped << "\n  server: CPU " << Fixed(r.cpu_percent, 0) << "%, RSS "
              << (r.rss_bytes >> 20) << " MiB, " << r.threads << " threads, " << r.open_fds
              << " open files, host load " << Fixed(r.load1, 2) << ", "
              << (r.mem_available_bytes >> 20) << " MiB available";
  }
  std::cout << "\n";
}

void PrintAlerts(const std::vector<Alert>& alerts) {
  if (alerts.empty()) return;
  Table t({"ALERT", "KIND", "SIGNAL", "LEVEL", "STATE", "VALUE", "THRESHOLD", "WINDOWS", "ACTION"});
  for (const Alert& a : alerts) {
    t.Add({"#" + std::to_string(a.id), a.kind, a.signal, LevelName(a.level), a.state,
           Fixed(a.value), Fixed(a.threshold), std::to_string(a.windows),
           a.action.empty() ? "-" : a.action});
  }
  std::cout << t.Render();
}

struct StatusArgs {
  std::string model;
  bool json = false;
};

int StatusCmd(Globals& g, const StatusArgs& a) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto status = GetMonitorStatus(**opened, a.model);
  if (!status.ok()) return Fail(status.status());
  if (a.json) {
    Json list = Json::array();
    for (const MonitorStatus& s : *status) list.push_back(MonitorStatusToJson(s));
    PrintJson(list);
    return kExitOk;
  }
  Table t({"MODEL", "PRODUCTION", "LEVEL", "LAST WINDOW", "N", "ACTIVE ALERTS", "PROMOTION"});
  for (const MonitorStatus& s : *status) {
    t.Add({s.model_name, s.production ? std::to_string(*s.production) : "-", LevelName(s.level),
           s.last ? TimeOf(s.last->end_ms) + " (v" + std::to_string(s.last->model_version) + ")"
                  : "never scored",
           s.last ? std::to_string(s.last->n) : "-", std::to_string(s.active.size()),
           s.freeze ? "frozen by #" + std::to_string(s.freeze->id) : "open"});
  }
  std::cout << t.Render();
  for (const MonitorStatus& s : *status) PrintAlerts(s.active);
  return kExitOk;
}

struct ReportArgs {
  std::string model, since, plots, policy;
  int limit = 0;
  bool json = false;
};

int ReportCmd(Globals& g, const ReportArgs& a) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto since = ParseSince(a.since, NowMs());
  if (!since.ok()) return Fail(since.status());
  MonitorPolicy policy = DefaultMonitorPolicy();
  if (!a.policy.empty()) {
    auto p = LoadMonitorPolicy(a.policy);
    if (!p.ok()) return Fail(p.status());
    policy = *p;
  }
  auto windows = ListWindowReports(**opened, a.model, *since, a.limit);
  if (!windows.ok()) return Fail(windows.status());
  if (!a.plots.empty()) {
    Status s = WriteMonitorPlots(*windows, policy, a.plots);
    if (!s.ok()) return Fail(s);
  }
  auto alerts = ListAlerts(**opened, {a.model, "", "", 0});
  if (!alerts.ok()) return Fail(alerts.status());
  if (a.json) {
    Json list = Json::array();
    for (const WindowReport& w : *windows) list.push_back(WindowReportToJson(w));
    Json al = Json::array();
    for (const Alert& x : *alerts) al.push_back(AlertToJson(x));
    PrintJson({{"model", a.model}, {"windows", list}, {"alerts", al}});
    return kExitOk;
  }
  if (windows->empty()) {
    std::cout << "no scored windows for " << a.model
              << " yet: `detops serve` scores them as traffic arrives, or run `detops monitor "
                 "watch --model "
              << a.model << "`\n";
    return kExitOk;
  }
  std::vector<std::string> header = {"WINDOW END (UTC)", "VER", "N", "LEVEL"};
  for (const auto& [signal, title] : kReportColumns) header.push_back(title);
  header.push_back("AUTOMATED");
  Table t(header, 1);
  for (const WindowReport& w : *windows) {
    std::vector<std::string> row = {TimeOf(w.end_ms), std::to_string(w.model_version),
                                    std::to_string(w.n), w.scored ? LevelName(w.level) : "-"};
    for (const auto& [signal, title] : kReportColumns) row.push_back(Cell(w, signal));
    row.push_back(w.scored ? Percent(w.kpis.automation_rate) : "-");
    t.Add(row);
  }
  std::cout << t.Render();
  const WindowReport& last = windows->back();
  std::cout << "\nlast window: " << last.n << " predictions of " << last.model_name << "@"
            << last.model_version << ", " << TimeOf(last.start_ms) << " to " << TimeOf(last.end_ms)
            << ", level " << LevelName(last.level) << "\n";
  if (last.scored) {
    PrintSignals(last);
    PrintKpis(last);
  } else {
    std::cout << "  " << last.note << "\n";
  }
  PrintAlerts(*alerts);
  if (!a.plots.empty()) {
    std::cout << "charts: " << a.plots << "/{drift,embedding,latency,kpi}.png\n";
  }
  return kExitOk;
}

struct WatchArgs {
  std::string model, policy, alias = "production";
  int every_s = 30;
  bool once = false, no_act = false, no_notify = false, json = false;
};

volatile std::sig_atomic_t g_stop = 0;

int WatchCmd(Globals& g, const WatchArgs& a) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  MonitorOptions mo;
  mo.model = a.model;
  mo.alias = a.alias;
  mo.act = !a.no_act;
  mo.notify = !a.no_notify;
  if (!a.policy.empty()) {
    auto p = LoadMonitorPolicy(a.policy);
    if (!p.ok()) return Fail(p.status());
    mo.policy = *p;
  }
  auto monitor = Monitor::Open(**opened, mo);
  if (!monitor.ok()) return Fail(monitor.status());
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  Json out = Json::array();
  while (!g_stop) {
    auto tick = (*monitor)->Tick(NowMs());
    if (!tick.ok()) return Fail(tick.status());
    for (const WindowReport& w : tick->windows) {
      if (a.json) {
        out.push_back(WindowReportToJson(w));
        continue;
      }
      std::cout << TimeOf(w.end_ms) << "  " << w.model_name << "@" << w.model_version << "  " << w.n
                << " predictions  " << (w.scored ? LevelName(w.level) : "not scored");
      for (const SignalValue& s : w.signals) {
        if (s.level != Level::kOk) {
          std::cout << "  " << s.signal << " " << Fixed(s.value) << " " << LevelName(s.level);
        }
      }
      std::cout << (w.note.empty() ? "" : "  (" + w.note + ")") << "\n";
    }
    if (!a.json) {
      for (const Alert& x : tick->alerts) {
        std::cout << "  alert #" << x.id << " " << x.kind << " " << x.state << " "
                  << LevelName(x.level) << ": " << x.message << "\n";
      }
      for (const std::string& act : tick->actions) std::cout << "  action: " << act << "\n";
      std::cout.flush();
    }
    if (a.once) break;
    for (int i = 0; i < a.every_s * 10 && !g_stop; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (a.json) PrintJson(out);
  return kExitOk;
}

}  // namespace

void AddMonitorCommands(CLI::App& app, Globals& g) {
  auto* mon = app.add_subcommand(
      "monitor", "Watch production models: drift, service health, accuracy from feedback, KPIs");
  mon->require_subcommand(1);

  auto* status = mon->add_subcommand("status", "Levels at a glance, active alerts, freezes");
  auto sa = std::make_shared<StatusArgs>();
  status->add_option("--model", sa->model, "one model (default: all)");
  status->add_flag("--json", sa->json, "print JSON");
  status->callback([&g, sa] { g.exit_code = StatusCmd(g, *sa); });

  auto* report = mon->add_subcommand(
      "report", "Every signal per scored window, the last window in full, alerts, charts");
  auto ra = std::make_shared<ReportArgs>();
  report->add_option("--model", ra->model, "registry model name")->required();
  report->add_option("--since", ra->since, "windows ending after: 30m, 2h, 7d or a date");
  report->add_option("--limit", ra->limit, "the newest N windows only")
      ->check(CLI::Range(0, 1 << 30));
  report->add_option("--plots", ra->plots, "write drift, embedding, latency and KPI charts here");
  report->add_option("--policy", ra->policy, "policy for the charts' thresholds")
      ->check(CLI::ExistingFile);
  report->add_flag("--json", ra->json, "print JSON");
  report->callback([&g, ra] { g.exit_code = ReportCmd(g, *ra); });

  auto* watch = mon->add_subcommand(
      "watch",
      "Score new windows of the prediction log as they complete, keep alerts, notify and roll "
      "back (for a fleet of servers writing to one store)");
  auto wa = std::make_shared<WatchArgs>();
  watch->add_option("--model", wa->model, "registry model name")->required();
  watch->add_option("--alias", wa->alias, "the alias a rollback moves")
      ->check(CLI::IsMember({"staging", "production"}))
      ->capture_default_str();
  watch->add_option("--policy", wa->policy, "monitoring policy YAML")->check(CLI::ExistingFile);
  watch->add_option("--every", wa->every_s, "seconds between runs")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  watch->add_flag("--once", wa->once, "one run, then exit (cron, tests)");
  watch->add_flag("--no-act", wa->no_act, "never roll back");
  watch->add_flag("--no-notify", wa->no_notify, "never call the webhook or command");
  watch->add_flag("--json", wa->json, "print the windows as JSON (at exit)");
  watch->callback([&g, wa] { g.exit_code = WatchCmd(g, *wa); });
}

}  // namespace detops::cli
