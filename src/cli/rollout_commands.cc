// detops rollouts ls | show | start | advance | abort

#include <chrono>
#include <ctime>
#include <functional>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/output.h"
#include "monitor/rollout.h"
#include "registry/registry.h"

namespace detops::cli {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "2026-12-07 10:04:05" (UTC) of Unix ms.
std::string TimeOf(int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string Stage(const Rollout& r) {
  if (r.mode != kRolloutCanary) return "-";
  std::string s = std::to_string(r.stage + 1) + "/" + std::to_string(r.stages.size());
  return r.state == kRolloutActive ? s + " (" + Percent(r.share) + ")" : s;
}

std::string Candidate(const Rollout& r) {
  return r.model_name + "@" + std::to_string(r.candidate_version);
}

// "0.1,0.5" -> {0.1, 0.5}; InvalidInput naming the flag.
Result<std::vector<double>> ParseStages(const std::string& text) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stod(part, &used));
      if (used != part.size()) throw std::exception();
    } catch (const std::exception&) {
      return Status::InvalidInput("--stages '" + text +
                                  "': expected shares separated by commas (0.1,0.5)");
    }
  }
  return out;
}

int ListCmd(Globals& g, const std::string& model, int limit, bool json) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto rollouts = ListRollouts(**opened, model, limit);
  if (!rollouts.ok()) return Fail(rollouts.status());
  if (json) {
    Json j = Json::array();
    for (const Rollout& r : *rollouts) j.push_back(RolloutToJson(r));
    PrintJson(j);
    return kExitOk;
  }
  if (rollouts->empty()) {
    std::cout << "no rollouts" << (model.empty() ? "" : " of " + model) << "\n";
    return kExitOk;
  }
  Table t({"ID", "CANDIDATE", "BASELINE", "MODE", "STAGE", "STATE", "STARTED", "REASON"});
  for (const Rollout& r : *rollouts) {
    t.Add({std::to_string(r.id), Candidate(r), std::to_string(r.baseline_version), r.mode, Stage(r),
           r.state, TimeOf(r.started_at_ms), r.reason.empty() ? "-" : r.reason});
  }
  std::cout << t.Render();
  return kExitOk;
}

std::string Num(double v, int digits, bool unknown_below_zero = false) {
  return unknown_below_zero && v < 0 ? "-" : Fixed(v, digits);
}

void PrintRollout(const Rollout& r) {
  std::cout << "rollout #" << r.id << "  " << r.mode << "  " << r.state << "\n"
            << "  candidate     " << Candidate(r) << " against production " << r.baseline_version
            << "\n";
  if (r.mode == kRolloutCanary) {
    std::string stages;
    for (double s : r.stages) stages += (stages.empty() ? "" : ", ") + Percent(s);
    std::cout << "  stage         " << Stage(r) << " of " << stages << "\n";
  }
  std::cout << "  started       " << TimeOf(r.started_at_ms) << " by " << r.actor << "\n"
            << "  stage began   " << TimeOf(r.stage_started_at_ms) << "\n";
  if (!r.finished_at.empty()) std::cout << "  finished      " << TimeOf(r.finished_at_ms) << "\n";
  if (!r.reason.empty()) std::cout << "  reason        " << r.reason << "\n";
  const RolloutReport& rep = r.report;
  if (rep.to_ms == 0) {
    std::cout << "no comparison yet: detops rollouts advance " << r.id << "\n";
    return;
  }
  std::cout << "last comparison, " << TimeOf(rep.from_ms) << " .. " << TimeOf(rep.to_ms)
            << (rep.enough ? "" : " (not yet enough traffic to decide)") << ":\n";
  Table t({"ARM", "V", "REQUESTS", "FAILED", "P95-MS", "SCORE", "LOW-CONF", "DETS", "LABELS",
           "MAP50", "AGREE"});
  for (auto [name, a] :
       {std::pair{"production", &rep.production}, std::pair{"candidate", &rep.candidate}}) {
    t.Add({name, std::to_string(a->model_version), std::to_string(a->requests),
           std::to_string(a->failures) + " (" + Percent(a->error_rate) + ")", Num(a->p95_ms, 1),
           Num(a->mean_score, 3), Num(a->low_confidence_share, 3), Num(a->detections_per_image, 2),
           std::to_string(a->labelled), Num(a->map50, 3, true), Num(a->agreement, 3, true)});
  }
  std::cout << t.Render();
  for (const std::string& c : rep.failed) std::cout << "  failed   " << c << "\n";
  for (const std::string& c : rep.passed) std::cout << "  passed   " << c << "\n";
  for (const std::string& c : rep.skipped) std::cout << "  skipped  " << c << "\n";
}

// What `show` and `advance` do to the rollout they name: read or advance it.
using RolloutOp = std::function<Result<Rollout>(Workspace&, int64_t id)>;

// Prints the rollout `op` returns for `id`, as JSON or text.
int OneRolloutCmd(Globals& g, const RolloutOp& op, int64_t id, bool json) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto r = op(**opened, id);
  if (!r.ok()) return Fail(r.status());
  if (json) {
    PrintJson(RolloutToJson(*r));
    return kExitOk;
  }
  PrintRollout(*r);
  return kExitOk;
}

// `detops rollouts NAME ID [--json]`, doing `op`.
void AddOneRolloutCommand(CLI::App* rollouts, Globals& g, const std::string& name,
                          const std::string& description, RolloutOp op) {
  auto* cmd = rollouts->add_subcommand(name, description);
  auto id = std::make_shared<int64_t>(0);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("id", *id, "rollout id (detops rollouts ls)")->required();
  cmd->add_flag("--json", *json, "print JSON");
  cmd->callback([&g, op, id, json] { g.exit_code = OneRolloutCmd(g, op, *id, *json); });
}

struct StartArgs {
  std::string model;  // NAME@V
  std::string mode = kRolloutCanary;
  std::string stages;
  RolloutPolicy policy;
  bool json = false;
};

int StartCmd(Globals& g, const StartArgs& a) {
  auto ref = ParseModelRef(a.model);
  if (!ref.ok()) return Fail(ref.status());
  if (ref->version == 0) {
    return Fail(Status::InvalidInput("'" + a.model + "': name the candidate as NAME@VERSION"));
  }
  RolloutPolicy policy = a.policy;
  if (!a.stages.empty()) {
    auto stages = ParseStages(a.stages);
    if (!stages.ok()) return Fail(stages.status());
    policy.stages = *stages;
  }
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto r = StartRollout(**opened, ref->name, ref->version, a.mode, policy, Actor());
  if (!r.ok()) return Fail(r.status());
  if (a.json) {
    PrintJson(RolloutToJson(*r));
    return kExitOk;
  }
  std::cout << "rollout #" << r->id << ": " << r->mode << " of " << Candidate(*r)
            << " against production " << r->baseline_version
            << (r->mode == kRolloutCanary ? ", " + Percent(r->share) + " of requests" : "")
            << " (servers pick it up within a poll)\n"
            << "next: detops rollouts advance " << r->id << " (decides once "
            << r->policy.min_requests << " candidate requests arrived)\n";
  return kExitOk;
}

int AbortCmd(Globals& g, int64_t id, const std::string& reason) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto r = AbortRollout(**opened, id, Actor(), reason);
  if (!r.ok()) return Fail(r.status());
  std::cout << "aborted rollout #" << r->id << " (" << Candidate(*r) << "): production "
            << r->baseline_version << " answers every request\n";
  return kExitOk;
}

}  // namespace

void AddRolloutCommands(CLI::App& app, Globals& g) {
  auto* rollouts = app.add_subcommand(
      "rollouts",
      "Releases under live traffic: a candidate version scored beside production (shadow) or "
      "answering a growing share of requests (canary), compared on the monitor's signals");
  rollouts->require_subcommand(1);

  auto* ls = rollouts->add_subcommand("ls", "List rollouts, newest first");
  auto ls_model = std::make_shared<std::string>();
  auto ls_limit = std::make_shared<int>(20);
  auto ls_json = std::make_shared<bool>(false);
  ls->add_option("--model", *ls_model, "only this model");
  ls->add_option("--limit", *ls_limit, "at most this many (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  ls->add_flag("--json", *ls_json, "print JSON");
  ls->callback([&g, ls_model, ls_limit, ls_json] {
    g.exit_code = ListCmd(g, *ls_model, *ls_limit, *ls_json);
  });

  AddOneRolloutCommand(rollouts, g, "show",
                       "Show one rollout: stage, both arms' figures, the checks passed and failed",
                       [](Workspace& ws, int64_t id) { return GetRollout(ws, id); });

  auto* start = rollouts->add_subcommand(
      "start", "Start a rollout of a candidate version against the model's production version");
  auto sa = std::make_shared<StartArgs>();
  start->add_option("candidate", sa->model, "the candidate, NAME@VERSION")->required();
  start->add_option("--mode", sa->mode, "shadow (scored, never answers) or canary")
      ->check(CLI::IsMember({kRolloutShadow, kRolloutCanary}))
      ->capture_default_str();
  start->add_option("--stages", sa->stages, "canary shares in order (default 0.1,0.5)");
  // The policy's numbers, checked and shown with their defaults in --help.
  auto policy_option = [start](const std::string& flag, auto& value, const std::string& help,
                               const CLI::Validator& check) {
    start->add_option(flag, value, help)->check(check)->capture_default_str();
  };
  policy_option("--min-requests", sa->policy.min_requests,
                "candidate requests a stage needs before a decision", CLI::PositiveNumber);
  policy_option("--stage-seconds", sa->policy.stage_seconds, "and at least this long at each stage",
                CLI::NonNegativeNumber);
  policy_option("--timeout", sa->policy.timeout_seconds,
                "seconds a stage may wait for enough traffic before it aborts",
                CLI::NonNegativeNumber);
  policy_option("--min-labels", sa->policy.min_labels,
                "feedback labels each arm needs before accuracy is compared",
                CLI::NonNegativeNumber);
  start->add_flag("--json", sa->json, "print JSON");
  start->callback([&g, sa] { g.exit_code = StartCmd(g, *sa); });

  AddOneRolloutCommand(rollouts, g, "advance",
                       "Compare the arms now and decide: next stage, passed, aborted, or wait for "
                       "traffic (what the pipeline's promote step calls)",
                       [](Workspace& ws, int64_t id) { return AdvanceRollout(ws, id, NowMs()); });

  auto* abort_cmd = rollouts->add_subcommand(
      "abort", "End an active rollout: the candidate is unloaded, production answers everything");
  auto ab_id = std::make_shared<int64_t>(0);
  auto ab_reason = std::make_shared<std::string>();
  abort_cmd->add_option("id", *ab_id, "rollout id")->required();
  abort_cmd->add_option("--reason", *ab_reason, "why (kept with the rollout and the audit log)")
      ->required();
  abort_cmd->callback([&g, ab_id, ab_reason] { g.exit_code = AbortCmd(g, *ab_id, *ab_reason); });
}

}  // namespace detops::cli
