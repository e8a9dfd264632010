// ml's own CPU kernels against LibTorch's operators on the shapes the n
// model trains on (batch 16 at 320 px): the fused batch norm + SiLU
// (bn_silu.h) against batch_norm then silu, forward and backward, in fp32
// and bf16. 2 threads. Run: build/bench/kernel_bench

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "ml/bf16.h"
#include "ml/bn_silu.h"

namespace detops::ml {
namespace {

// state.range: 0 channels, 1 side, 2 bf16?, 3 fused?
void BM_BnSiluTrainStep(benchmark::State& state) {
  torch::set_num_threads(2);
  const int64_t channels = state.range(0), side = state.range(1);
  const auto dtype = state.range(2) ? torch::kBFloat16 : torch::kFloat;
  const bool fused = state.range(3) != 0;
  torch::manual_seed(0);
  torch::nn::BatchNorm2d bn(torch::nn::BatchNormOptions(channels).eps(1e-3).momentum(0.03));
  torch::Tensor x = torch::randn({16, channels, side, side})
                        .contiguous(torch::MemoryFormat::ChannelsLast)
                        .to(dtype)
                        .set_requires_grad(true);
  torch::Tensor g = torch::randn_like(x);
  for (auto _ : state) {
    torch::Tensor y = fused ? BnSiluTrain(x, *bn) : Silu(bn->forward(x));
    y.backward(g);
    benchmark::DoNotOptimize(x.grad().data_ptr());
    x.mutable_grad() = torch::Tensor();
    bn->weight.mutable_grad() = torch::Tensor();
    bn->bias.mutable_grad() = torch::Tensor();
  }
  state.SetItemsProcessed(state.iterations() * x.numel());
  state.SetLabel(std::string(dtype == torch::kFloat ? "fp32" : "bf16") +
                 (fused ? ", fused" : ", LibTorch"));
}
BENCHMARK(BM_BnSiluTrainStep)
    ->ArgsProduct({{16, 48}, {80, 40}, {0, 1}, {0, 1}})
    ->ArgNames({"c", "side", "bf16", "fused"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace detops::ml

BENCHMARK_MAIN();
