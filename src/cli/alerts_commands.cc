// detops alerts ls | show | ack | resolve

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"
#include "monitor/alerts.h"

namespace detops::cli {
namespace {

std::string Dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string Seconds(const std::string& iso) { return iso.empty() ? "-" : iso.substr(0, 19); }

// A window bound (Unix ms) to the second, in UTC.
std::string UtcSeconds(int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Model(const Alert& a) { return a.model_name + "@" + std::to_string(a.model_version); }

std::string Level(const Alert& a) {
  std::string s = LevelName(a.level);
  if (a.peak_level != a.level) s += " (peak " + std::string(LevelName(a.peak_level)) + ")";
  return s;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

struct ListArgs {
  AlertFilter filter;
  bool json = false;
};

int ListCmd(Globals& g, ListArgs a) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  const std::string shown = a.filter.state;
  if (a.filter.state == "all") a.filter.state.clear();
  auto alerts = ListAlerts(**opened, a.filter);
  if (!alerts.ok()) return Fail(alerts.status());
  if (a.json) {
    Json j = Json::array();
    for (const Alert& x : *alerts) j.push_back(AlertToJson(x));
    PrintJson(j);
    return kExitOk;
  }
  if (alerts->empty()) {
    std::cout << "no " << (shown == "all" ? "" : shown + " ") << "alerts"
              << (a.filter.model_name.empty() ? "" : " for " + a.filter.model_name)
              << (a.filter.signal.empty() ? "" : " on " + a.filter.signal) << "\n";
    return kExitOk;
  }
  Table t({"ID", "MODEL", "SIGNAL", "KIND", "LEVEL", "STATE", "VALUE", "THRESHOLD", "WINDOWS",
           "UPDATED"});
  for (const Alert& x : *alerts) {
    t.Add({std::to_string(x.id), Model(x), x.signal, x.kind, Level(x), x.state,
           x.statistic + " " + Num(x.value), Num(x.threshold), std::to_string(x.windows),
           Seconds(x.updated_at)});
  }
  std::cout << t.Render();
  return kExitOk;
}

void PrintAlert(const Alert& a) {
  std::cout << "alert #" << a.id << "  " << Level(a) << "  " << a.state << "\n"
            << "  model         " << Model(a) << "\n"
            << "  signal        " << a.signal << " (" << a.kind << ", " << a.statistic << ")\n"
            << "  value         " << Num(a.value) << " (threshold " << Num(a.threshold) << ")\n"
            << "  message       " << Dash(a.message) << "\n";
  if (!a.action.empty()) std::cout << "  action        " << a.action << "\n";
  std::cout << "  window        " << a.window_n << " predictions, " << UtcSeconds(a.window_start_ms)
            << " .. " << UtcSeconds(a.window_end_ms) << "\n"
            << "  windows       " << a.windows << " reached a level, " << a.ok_windows
            << " ok since the last\n"
            << "  examples      " << (a.example_ids.empty() ? "-" : Join(a.example_ids)) << "\n"
            << "  opened        " << a.opened_at << "\n"
            << "  updated       " << a.updated_at << "\n";
  if (!a.acked_by.empty()) {
    std::cout << "  acknowledged  " << a.acked_at << " by " << a.acked_by << "\n";
  }
  if (!a.resolved_by.empty()) {
    std::cout << "  resolved      " << a.resolved_at << " by " << a.resolved_by << "\n";
  }
  if (!a.note.empty()) std::cout << "  note          " << a.note << "\n";
  std::cout << "  notified      " << (a.notified_level.empty() ? "never" : "at " + a.notified_level)
            << (a.notify_error.empty() ? "" : " (failed: " + a.notify_error + ")") << "\n";
}

int ShowCmd(Globals& g, int64_t id, bool json) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto a = GetAlert(**opened, id);
  if (!a.ok()) return Fail(a.status());
  if (json) {
    PrintJson(AlertToJson(*a));
    return kExitOk;
  }
  PrintAlert(*a);
  if (a->state == kAlertOpen) {
    std::cout << "next: detops alerts ack " << a->id << " --note TEXT\n";
  } else if (a->state == kAlertAcknowledged) {
    std::cout << "next: detops alerts resolve " << a->id << " --note TEXT\n";
  }
  return kExitOk;
}

struct MarkArgs {
  int64_t id = 0;
  std::string note;
  std::string actor;
  bool resolve = false;
};

int MarkCmd(Globals& g, const MarkArgs& m) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  const std::string actor = m.actor.empty() ? Actor() : m.actor;
  auto a = m.resolve ? ResolveAlert(**opened, m.id, actor, m.note)
                     : AcknowledgeAlert(**opened, m.id, actor, m.note);
  if (!a.ok()) return Fail(a.status());
  std::cout << (m.resolve ? "resolved" : "acknowledged") << " alert #" << a->id << " (" << Model(*a)
            << " " << a->signal << ", " << Level(*a) << ") as " << actor << "\n";
  return kExitOk;
}

}  // namespace

void AddAlertCommands(CLI::App& app, Globals& g) {
  auto* alerts = app.add_subcommand(
      "alerts",
      "Monitoring alerts: one per episode of a signal beyond its threshold; acknowledge and "
      "resolve them (an open escalate alert freezes automatic promotion)");
  alerts->require_subcommand(1);

  auto* ls = alerts->add_subcommand("ls", "List alerts, newest first");
  auto la = std::make_shared<ListArgs>();
  la->filter.state = "active";
  ls->add_option("--model", la->filter.model_name, "only this model");
  ls->add_option("--state", la->filter.state,
                 "open | acknowledged | resolved | active (open or acknowledged) | all")
      ->check(CLI::IsMember({"open", "acknowledged", "resolved", "active", "all"}))
      ->capture_default_str();
  ls->add_option("--signal", la->filter.signal, "only this signal (e.g. input.brightness)");
  ls->add_option("--limit", la->filter.limit, "at most this many (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  ls->add_flag("--json", la->json, "print JSON");
  ls->callback([&g, la] { g.exit_code = ListCmd(g, *la); });

  auto* show = alerts->add_subcommand("show", "Show one alert: values, window, examples, history");
  auto show_id = std::make_shared<int64_t>(0);
  auto show_json = std::make_shared<bool>(false);
  show->add_option("id", *show_id, "alert id (detops alerts ls)")->required();
  show->add_flag("--json", *show_json, "print JSON");
  show->callback([&g, show_id, show_json] { g.exit_code = ShowCmd(g, *show_id, *show_json); });

  for (bool resolve : {false, true}) {
    auto* cmd = alerts->add_subcommand(
        resolve ? "resolve" : "ack",
        resolve ? "Resolve an alert: the problem is dealt with (the monitor opens a new alert if "
                  "the signal crosses its threshold again)"
                : "Acknowledge an alert: someone is on it (lifts the promotion freeze of an "
                  "escalate alert)");
    auto m = std::make_shared<MarkArgs>();
    m->resolve = resolve;
    cmd->add_option("id", m->id, "alert id (detops alerts ls)")->required();
    cmd->add_option("--note", m->note, "what was found or done (kept with the alert)");
    cmd->add_option("--actor", m->actor, "who (default: $USER)");
    cmd->callback([&g, m] { g.exit_code = MarkCmd(g, *m); });
  }
}

}  // namespace detops::cli
