// The xnor kernel alone, without MXNet: times xnor::conv_forward on one 3x3, stride 1, pad 1,
// C -> C layer of random data, so the op's cost inside MXNet (engine hand-off, attribute
// parsing, shape inference) can be told apart from the kernel's own. Build and run:
//   make -C mxcompress/ops kernel-bench
//   OMP_NUM_THREADS=1 mxcompress/ops/build/kernel_bench 256 14 1 [repeats]
// Arguments: channels C, image side S (input N x C x S x S), batch N, timed calls (201). The
// kernel is the one the op would pick (MXCOMPRESS_XNOR_KERNEL=portable|avx2|avx512 overrides
// it); threads: OMP_NUM_THREADS. Prints the median and the fastest call, in ms and in binary
// MAC/s (N * C * C * 9 * S * S per call).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "xnor_kernel.h"

namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s CHANNELS SIDE BATCH [REPEATS]\n", argv[0]);
    return 2;
  }
  const int64_t C = std::atoll(argv[1]), S = std::atoll(argv[2]), N = std::atoll(argv[3]);
  const int repeats = argc > 4 ? std::atoi(argv[4]) : 201;
  if (C < 1 || S < 1 || N < 1 || repeats < 1) {
    std::fprintf(stderr, "CHANNELS, SIDE, BATCH and REPEATS must be >= 1\n");
    return 2;
  }
  xnor::ConvGeom g{};
  g.N = N; g.C = C; g.H = S; g.W = S; g.O = C; g.KH = 3; g.KW = 3;
  g.SH = g.SW = 1; g.PH = g.PW = 1; g.DH = g.DW = 1;
  xnor::finish_geometry(&g);

  std::mt19937 rng(0);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(N * C * S * S));
  for (float& v : x) v = uniform(rng);
  std::vector<uint8_t> w(static_cast<size_t>(C * 9 * g.Cb));
  for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
  if (C % 8) {  // the padding bits of each tap's last byte must be 0
    for (int64_t t = 0; t < C * 9; ++t) w[t * g.Cb + g.Cb - 1] &= (1u << (C % 8)) - 1;
  }
  std::vector<float> alpha(static_cast<size_t>(C), 1.0f);
  std::vector<float> out(static_cast<size_t>(N * C * g.OH * g.OW));
  std::vector<uint64_t> ws((xnor::workspace_bytes(g) + 7) / 8 + 8);

  std::vector<double> times;
  for (int r = 0; r < repeats + 5; ++r) {
    const double start = seconds_now();
    xnor::conv_forward(g, x.data(), w.data(), alpha.data(), nullptr, out.data(), ws.data(), 0);
    if (r >= 5) times.push_back(seconds_now() - start);  // 5 warm-up calls
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2], macs = double(N) * C * C * 9 * S * S;
  static const char* kNames[] = {"auto", "portable", "avx2", "avx512"};
  std::printf("kernel %s threads %d C=%lld S=%lld N=%lld: median %.3f ms (%.0f G binary MAC/s), "
              "fastest %.3f ms, %d calls\n",
              kNames[xnor::resolve_kernel(0)], omp_get_max_threads(),
              static_cast<long long>(C), static_cast<long long>(S), static_cast<long long>(N),
              1e3 * median, macs / median / 1e9, 1e3 * times.front(), repeats);
  return 0;
}
