// Register a trained run as a model version; promote a version through the
// policy's gates; roll production back.

#include <cstdio>

#include "monitor/alerts.h"
#include "pipeline/jobs_internal.h"

namespace detops {
namespace fs = std::filesystem;

namespace {

// A run's test-split figures without the "test/" prefix.
std::map<std::string, double> TestMetrics(const RunInfo& run) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : run.final_metrics) {
    if (k.rfind("test/", 0) == 0) out[k.substr(5)] = v;
  }
  return out;
}

Result<Manifest> ManifestOf(Workspace& ws, const std::string& dataset_version,
                            VersionInfo* info = nullptr) {
  ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(dataset_version));
  ASSIGN_OR_RETURN(VersionInfo version, ResolveVersion(ws, ref));
  if (info) *info = version;
  return LoadManifest(ws, version);
}

}  // namespace

Result<ModelVersion> RunRegisterJob(Workspace& ws, const RegisterJobOptions& o) {
  ASSIGN_OR_RETURN(auto tracker, Tracker::Open(ws));
  ASSIGN_OR_RETURN(RunInfo run, tracker->GetRun(o.run));
  if (run.kind != "train") {
    return Status::InvalidInput("run " + run.name + " is a " + run.kind +
                                " run; register a train run");
  }
  if (run.status == RunStatus::kRunning || run.status == RunStatus::kFailed) {
    return Status::InvalidInput("run " + run.name + " is " + RunStatusName(run.status) +
                                "; register a finished (or stopped) run");
  }
  ASSIGN_OR_RETURN(fs::path weights, ResolveWeights(ws, run.id));
  VersionInfo dataset;
  ASSIGN_OR_RETURN(Manifest manifest, ManifestOf(ws, run.dataset_version, &dataset));
  ASSIGN_OR_RETURN(auto detector, Detector::Load(weights, {o.device, o.threads}));
  const ModelConfig& config = detector->config();
  std::map<std::string, double> metrics = TestMetrics(run);
  if (!metrics.count("map50") || !metrics.count("latency_p95_ms")) {
    // Stopped before its test evaluation: evaluate now, as training would have.
    if (o.on_progress) o.on_progress("evaluating " + run.name + " on the test split");
    ASSIGN_OR_RETURN(SplitEvaluation ev,
                     EvaluateSplit(ws, *detector, manifest, Split::kTest, EvalOptions{}, 8));
    RETURN_IF_ERROR(RecordEvaluation(*tracker, run.id, ev, ""));
    metrics = HeadlineMetrics(ev);
  }
  if (o.on_progress) o.on_progress("profiling " + run.dataset_version + " for monitoring");
  // The profile is measured in the precision `detops serve` runs by default
  // on this machine (bf16 where the CPU has AVX512-BF16): the embeddings of
  // a bf16 network differ from fp32's by more than a drift test forgives.
  ASSIGN_OR_RETURN(std::string serving, ResolvePrecision("auto", o.device));
  std::unique_ptr<Detector> profiler;
  if (serving != detector->precision()) {
    DetectorOptions po{o.device, o.threads};
    po.precision = serving;
    ASSIGN_OR_RETURN(profiler, Detector::Load(weights, po));
  }
  ASSIGN_OR_RETURN(std::string profile,
                   BuildReferenceProfile(ws, profiler ? *profiler : *detector, manifest, 500));
  ASSIGN_OR_RETURN(auto registry, Registry::Open(ws));
  NewModelVersion nv;
  nv.name = o.name.empty() ? dataset.dataset : o.name;
  nv.run_id = run.id;
  nv.weights = weights;
  nv.profile_json = std::move(profile);
  nv.spec = {"detops-anchor-free", config.variant, config.imgsz, config.classes};
  nv.metrics = std::move(metrics);
  nv.dataset_version = dataset.Ref();
  nv.dataset_validation = dataset.validation_status;
  nv.description = o.description;
  nv.created_by = o.actor;
  return registry->Register(nv);
}

namespace {

// map50 of a model on the test split of a dataset version.
Result<double> Map50On(Workspace& ws, Registry& registry, const ModelVersion& v,
                       const std::string& dataset, const PromoteJobOptions& o) {
  if (o.on_progress) o.on_progress("evaluating " + v.Ref() + " on " + dataset);
  ASSIGN_OR_RETURN(Manifest manifest, ManifestOf(ws, dataset));
  ASSIGN_OR_RETURN(auto det, Detector::Load(registry.WeightsPath(v), {o.device, o.threads}));
  ASSIGN_OR_RETURN(SplitEvaluation ev,
                   EvaluateSplit(ws, *det, manifest, Split::kTest, EvalOptions{}, 8));
  return HeadlineMetrics(ev)["map50"];
}

// One gate per extra test set: no larger map50 drop against production than
// the policy's max_regression (default 0); without production, the floor.
Status CheckExtraTests(Workspace& ws, Registry& registry, const PromoteJobOptions& o,
                       const TargetPolicy& policy, const ModelVersion& cand,
                       PromoteJobResult& out) {
  for (const std::string& ref : o.extra_tests) {
    ASSIGN_OR_RETURN(double c, Map50On(ws, registry, cand, ref, o));
    double p = -1;
    if (out.production) {
      ASSIGN_OR_RETURN(p, Map50On(ws, registry, *out.production, ref, o));
    }
    out.extra_map50[ref] = {c, p};
    GateCheck check;
    char buf[160];
    if (p >= 0) {
      double tol = policy.max_regression.count("map50") ? policy.max_regression.at("map50") : 0;
      check.gate = "regression map50 on " + ref;
      std::snprintf(buf, sizeof buf, ">= %.3f (%s %.3f - %.3f)", p - tol,
                    out.production->Ref().c_str(), p, tol);
      check.required = buf;
      check.margin = c - (p - tol);
    } else {
      double floor = policy.floors.count("map50") ? policy.floors.at("map50") : 0;
      check.gate = "floor map50 on " + ref;
      std::snprintf(buf, sizeof buf, ">= %.3f", floor);
      check.required = buf;
      check.margin = c - floor;
    }
    std::snprintf(buf, sizeof buf, "%.3f", c);
    check.actual = buf;
    check.passed = check.margin >= -1e-9;
    out.gates.checks.push_back(check);
  }
  return Status::Ok();
}

}  // namespace

Result<PromoteJobResult> RunPromoteJob(Workspace& ws, const PromoteJobOptions& o) {
  if (!IsKnownAlias(o.to)) {
    return Status::InvalidInput("--to must be staging or production; got '" + o.to + "'");
  }
  if (o.force && o.reason.empty()) {
    return Status::InvalidInput("--force needs --reason: a forced promotion is recorded with why");
  }
  PromotionPolicy policy = DefaultPromotionPolicy();
  if (!o.policy_file.empty()) {
    ASSIGN_OR_RETURN(policy, LoadPromotionPolicy(o.policy_file));
  }
  ASSIGN_OR_RETURN(auto registry, Registry::Open(ws));
  ASSIGN_OR_RETURN(ModelRef ref, ParseModelRef(o.model));
  if (ref.version == 0 && ref.alias.empty()) {
    return Status::InvalidInput("promote names one version: " + ref.name + "@VERSION");
  }
  PromoteJobResult out;
  ASSIGN_OR_RETURN(out.candidate, registry->Get(ref));
  const ModelVersion& cand = out.candidate;
  if (o.to == kProduction) {
    ASSIGN_OR_RETURN(std::optional<Alert> freeze, PromotionFreeze(ws, cand.name));
    if (freeze) {
      const std::string why = "promotion of " + cand.name + " is frozen by alert #" +
                              std::to_string(freeze->id) + " (" + freeze->signal + " at " +
                              LevelName(freeze->peak_level) + ") until a person acknowledges it";
      if (o.automatic)
        return Status::AlreadyExists(why + ": detops alerts ack " + std::to_string(freeze->id));
      out.notes.push_back(why + "; promoted by " + (o.actor.empty() ? "a person" : o.actor));
    }
  }
  // Another process may move the alias while the gates run; the registry
  // refuses a change made against a stale view, and we check again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    ASSIGN_OR_RETURN(std::optional<int> current, registry->AliasVersion(cand.name, o.to));
    if (current == cand.version) {
      out.unchanged = true;
      return out;
    }
    GateInputs in;
    std::string incomparable;  // production's classes differ: no regression check possible
    in.candidate = cand.metrics;
    in.dataset_validation = cand.dataset_validation;
    ASSIGN_OR_RETURN(std::optional<int> prod, registry->AliasVersion(cand.name, kProduction));
    out.production.reset();
    if (prod && *prod != cand.version) {
      ASSIGN_OR_RETURN(ModelVersion pv, registry->Get(ModelRef{cand.name, *prod, ""}));
      in.production_ref = pv.Ref();
      if (pv.dataset_version == cand.dataset_version) {
        in.production = pv.metrics;  // same test split, same deterministic evaluation
      } else if (pv.spec.classes != cand.spec.classes) {
        incomparable = pv.Ref();
      } else {
        // Production was measured on another dataset version: measure it
        // again on the candidate's test split.
        if (o.on_progress) o.on_progress("evaluating " + pv.Ref() + " on " + cand.dataset_version);
        ASSIGN_OR_RETURN(Manifest manifest, ManifestOf(ws, cand.dataset_version));
        ASSIGN_OR_RETURN(auto det,
                         Detector::Load(registry->WeightsPath(pv), {o.device, o.threads}));
        ASSIGN_OR_RETURN(SplitEvaluation ev,
                         EvaluateSplit(ws, *det, manifest, Split::kTest, EvalOptions{}, 8));
        in.production = HeadlineMetrics(ev);
        out.notes.push_back(pv.Ref() + " re-evaluated on the test split of " +
                            cand.dataset_version);
      }
      out.production = pv;
    }
    out.gates = CheckGates(policy.For(o.to), in);
    RETURN_IF_ERROR(CheckExtraTests(ws, *registry, o, policy.For(o.to), cand, out));
    if (!incomparable.empty() && !policy.For(o.to).max_regression.empty()) {
      out.gates.checks.push_back(
          {"regression", "the classes of " + incomparable, "other classes", false, 0});
    }
    if (o.dry_run) return out;
    if (!out.gates.passed() && !o.force) return out;  // refused: nothing written
    AliasChange change{cand.name, o.to,     cand.version,        current,
                       o.actor,   o.reason, !out.gates.passed(), out.gates};
    auto entry = registry->SetAlias(change);
    if (entry.ok()) {
      out.applied = true;
      out.entry = *entry;
      return out;
    }
    if (entry.status().code() != StatusCode::kAlreadyExists) return entry.status();
    out.notes.push_back(entry.status().message());
  }
  return Status::Unavailable(cand.name + " " + o.to +
                             " kept moving while this promotion was being checked; try again");
}

Result<AuditEntry> RunRollbackJob(Workspace& ws, const std::string& name, const std::string& alias,
                                  const std::string& actor, const std::string& reason) {
  ASSIGN_OR_RETURN(auto registry, Registry::Open(ws));
  return registry->Rollback(name, alias, actor, reason);
}

}  // namespace detops
