// detops synth OUT --kind car|road --n N --seed S [--lighting ...]

#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"
#include "data/data.h"

namespace detops::cli {
namespace {

struct SynthArgs {
  std::string out, kind = "car", lighting = "normal";
  int n = 100, width = 640, height = 480, threads = 2, quality = 90;
  uint64_t seed = 0;
  double val = 0.15, test = 0.15;
};

int RunSynth(const SynthArgs& a) {
  SynthOptions o;
  auto kind = ParseSceneKind(a.kind);
  if (!kind.ok()) return Fail(kind.status());
  auto lighting = ParseLighting(a.lighting);
  if (!lighting.ok()) return Fail(lighting.status());
  o.kind = *kind;
  o.lighting = *lighting;
  o.n = a.n;
  o.seed = a.seed;
  o.width = a.width;
  o.height = a.height;
  o.threads = a.threads;
  o.jpeg_quality = a.quality;
  o.val_fraction = a.val;
  o.test_fraction = a.test;
  Progress progress("rendering");
  o.progress = [&](int d, int t) {
    progress.Update(static_cast<size_t>(d), static_cast<size_t>(t));
  };
  Status s = WriteSynthDataset(o, a.out);
  progress.Finish();
  if (!s.ok()) return Fail(s);
  std::cout << "wrote " << a.n << " " << a.kind << " scenes (" << a.lighting << " lighting, seed "
            << a.seed << ") to " << a.out << "\n";
  return kExitOk;
}

}  // namespace

void AddSynthCommand(CLI::App& app, Globals& g) {
  auto* cmd = app.add_subcommand(
      "synth",
      "Write a deterministic synthetic damage dataset (Ultralytics layout, exact labels): car "
      "panels with scratches and dents, or roads with potholes");
  auto a = std::make_shared<SynthArgs>();
  cmd->add_option("out", a->out, "output folder (absent or empty)")->required();
  cmd->add_option("--kind", a->kind, "car | road")
      ->check(CLI::IsMember({"car", "road"}))
      ->capture_default_str();
  cmd->add_option("--n", a->n, "number of images")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "random seed")->capture_default_str();
  cmd->add_option("--lighting", a->lighting,
                  "normal | dusk (0.82x exposure) | dark | overexposed | low-contrast")
      ->check(CLI::IsMember({"normal", "dusk", "dark", "overexposed", "low-contrast"}))
      ->capture_default_str();
  cmd->add_option("--width", a->width, "image width")
      ->check(CLI::Range(32, 8192))
      ->capture_default_str();
  cmd->add_option("--height", a->height, "image height")
      ->check(CLI::Range(32, 8192))
      ->capture_default_str();
  cmd->add_option("--val", a->val, "fraction in val")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--test", a->test, "fraction in test")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--quality", a->quality, "JPEG quality")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "rendering threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->callback([&g, a] { g.exit_code = RunSynth(*a); });
}

}  // namespace detops::cli
