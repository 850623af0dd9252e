// Bit-packed xnor-popcount 2-D convolution kernel; see xnor_kernel.h for the maths.
//
// Data layout of the packed input (the only large workspace, 1/16 of the float input
// plus the zero border), portable and AVX-512 kernels:  P[n][hp][cw][phase][j] 64-bit words,
// hp = h + PH, column wp = w + PW stored at phase = wp % SW, j = wp / SW. For an output
// pixel (oh, ow) and tap (kh, kw) the word cw sits at j = ow + (kw * DW) / SW in phase
// (kw * DW) % SW of row oh * SH + kh * DH, so neighbouring output pixels read consecutive
// words for any stride: one vector load for 8 (AVX-512) pixels.
// The AVX2 kernel's layout ("nibble bytes"): B[n][hp][wp][C4] bytes, one byte per 4 channels
// (nibble position j = channels 4 j .. 4 j + 3) holding 4 times the nibble, C4 = 16 Wc. Its
// micro-kernel addresses every pixel on its own: pixel (oh, ow) starts at
// ((n Hp + oh SH) Wp + ow SW) C4 and step s = (tap, j) is at soff[s] = (kh DH Wp + kw DW) C4
// + j from there. Its weights are transposed, per thread and channel block, to step-major
// rows of 32 output channels' nibbles (nibble_weights_avx2), the vpshufb indices of its
// table look-ups.
// Activations are packed once, before any patch is formed (no im2col); an input that is
// already bit-packed ((N, H, W, Cb) bytes) is copied into these layouts.
//
// Register-blocked micro-kernels (xnor_tiles.h, where the schemes are described). AVX-512
// and portable: a tile is 8 output pixels of one row x Q output channels (AVX-512 Q = 16,
// portable Q = 4), its weights in a per-thread buffer in the order the micro-kernel reads
// them; each applies the float epilogue (C*KH*KW - 2 * count + border correction, times
// alpha, plus bias) from registers and stores the outputs itself. AVX2: a tile is 3 (6)
// output pixels anywhere in a work item of whole output rows x 128 (64, 32) output channels;
// its counts go to per-thread int32 counts of the item, and the same epilogue runs over them
// per output row. For a bit-packed output each epilogue stores every channel's 8-pixel mask
// of (y * out_scale < out_threshold) instead, and a last pass transposes the masks into
// per-pixel channel bits (xnor_pack.h).
#include "xnor_kernel.h"

#include <immintrin.h>
#include <omp.h>

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>
#include <cstdlib>
#include <cstring>

namespace xnor {

namespace {

constexpr int64_t kTileOW = 8;    // output pixels per tile (and per epilogue vector)
constexpr int64_t kRows = 4;      // output rows per work item
constexpr int64_t kPackRows = 4;  // input rows packed per work item
#ifndef XNOR_TILE_QP
#define XNOR_TILE_QP 4
#endif
#ifndef XNOR_TILE_Q512
#define XNOR_TILE_Q512 16
#endif
constexpr int kQPortable = XNOR_TILE_QP;  // output channels per tile (portable)
constexpr int kQ512 = XNOR_TILE_Q512;    // output channels per tile (AVX-512: 32 zmm registers)
constexpr int kQMax = std::max(kQPortable, kQ512);
constexpr int64_t kChunkSteps = 63;      // AVX2: steps per byte-count chunk (63 * 4 < 256)
constexpr int64_t kChunksPerTotal = 256; // AVX2: chunks per 16-bit total (256 * 252 < 65536)

inline size_t align64(size_t n) { return (n + 63) & ~static_cast<size_t>(63); }



// Taps of a window starting at input position `start` (stride `dil`) that fall inside
// [0, extent): the half-open interval [*lo, *hi) of kernel indices, always with
// 0 <= lo <= hi <= k (the border table indexes its (k + 1)-entry prefix sums with them). An
// empty window (all taps in the padding, e.g. pad >= kernel) is [0, 0): the raw first valid
// index can lie beyond the kernel there (dil == 1: -start > k).
inline void valid_taps(int64_t start, int64_t dil, int64_t k, int64_t extent, int64_t* lo,
                       int64_t* hi) {
  int64_t a, b;
  if (dil == 1) {  // the common case, without divisions
    a = std::max<int64_t>(0, -start);
    b = std::min(k, extent - start);
  } else {
    a = start >= 0 ? 0 : (-start + dil - 1) / dil;
    b = start > extent - 1 ? 0 : std::min(k, (extent - 1 - start) / dil + 1);
  }
  if (b <= a) a = b = 0;  // empty: one canonical range, inside [0, k]
  *lo = a;
  *hi = b;
}


// Word cw of tap t of the packed weights: the tap holds Cb = ceil(C / 8) bytes, so the
// last word may be short (its missing bytes are zero).
inline uint64_t load_tap_word(const ConvGeom& g, const uint8_t* w, int64_t t, int64_t cw) {
  const uint8_t* src = w + t * g.Cb + cw * 8;
  uint64_t v = 0;
  if (cw * 8 + 8 <= g.Cb) {
    std::memcpy(&v, src, 8);  // a whole word: one unaligned load
  } else {
    for (int64_t b = 0; b < g.Cb - cw * 8; ++b) v |= static_cast<uint64_t>(src[b]) << (8 * b);
  }
  return v;
}

// Portable popcount (SWAR, no library call; the hot loops use vector popcounts instead).
inline int popcount64(uint64_t v) {
  v = v - ((v >> 1) & 0x5555555555555555ULL);
  v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
  v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return static_cast<int>((v * 0x0101010101010101ULL) >> 56);
}


struct Workspace {
  uint64_t* packed;  // packed input, word layout; the AVX2 kernel's nibble bytes instead
  int64_t* in_off;  // (KH * KW * Wc) word offsets of each step from a tile's base
  int32_t* soff;    // AVX2: (KH * KW * C4) byte offsets of each step from a pixel's origin
  int32_t* corr;    // (row classes, O, OWr) border correction added to C*KH*KW - 2*count
  int32_t* row_class;  // (OH,) 0 for rows whose window is inside the image, else 1, 2, ..
  char* threads;       // omp_get_max_threads() private buffers of thread_buffer_bytes(g)
  uint8_t* masks;      // bit-packed output: (N, OH, OWr / 8, O) pixel masks, or null
};

Workspace carve(const ConvGeom& g, void* ws, bool packed_output) {
  Workspace w;
  char* p = static_cast<char*>(ws);
  w.packed = reinterpret_cast<uint64_t*>(p);
  p += align64(packed_input_bytes(g));
  w.in_off = reinterpret_cast<int64_t*>(p);
  p += align64(sizeof(int64_t) * g.KH * g.KW * g.Wc);
  w.soff = reinterpret_cast<int32_t*>(p);
  p += align64(sizeof(int32_t) * g.KH * g.KW * g.C4);
  w.corr = reinterpret_cast<int32_t*>(p);
  p += align64(corr_bytes(g));
  w.row_class = reinterpret_cast<int32_t*>(p);
  p += align64(sizeof(int32_t) * g.OH);
  w.threads = p;
  p += static_cast<size_t>(omp_get_max_threads()) * align64(thread_buffer_bytes(g));
  w.masks = packed_output ? reinterpret_cast<uint8_t*>(p) : nullptr;
  return w;
}

inline uint64_t* packed_row(const ConvGeom& g, uint64_t* packed, int64_t n, int64_t hp,
                            int64_t cw) {
  return packed + ((n * g.Hp + hp) * g.Wc + cw) * g.SW * g.Lp;
}

// ---- activation packing
#include "xnor_pack.h"

// ---- micro-kernels
#include "xnor_tiles.h"

// ---- the thread team of conv_forward
#include "xnor_team.h"

// ---- per-tap weight popcounts (for the border correction) ----------------------------

// Layouts of the weights of one channel block in a thread's private buffer (K steps, qn
// channels): what each micro-kernel reads.
enum WeightLayout {
  kWordsByChannel,  // AVX-512: out[q * K + k], whole words
  kWordsByStep,     // portable: out[k * qn + q], whole words
};

// Copies the weight words of channels [o0, o0 + qn) into `out` in `layout`.
void block_weights(const ConvGeom& g, const uint8_t* w, int64_t o0, int64_t qn, uint64_t* out,
                   WeightLayout layout) {
  const int64_t taps = g.KH * g.KW, wc = g.Wc, K = taps * wc;
  if (layout == kWordsByChannel && g.Cb == 8 * wc) {  // the block is one contiguous copy
    std::memcpy(out, w + o0 * taps * g.Cb, static_cast<size_t>(qn * taps * g.Cb));
    return;
  }
  for (int64_t q = 0; q < qn; ++q)
    for (int64_t tap = 0; tap < taps; ++tap)
      for (int64_t cw = 0; cw < wc; ++cw) {
        const uint64_t word = load_tap_word(g, w, (o0 + q) * taps + tap, cw);
        const int64_t k = tap * wc + cw;
        if (layout == kWordsByChannel) out[q * K + k] = word;
        else out[k * qn + q] = word;
      }
}

// The epilogue of the tile of output channels o0.. and pixels ow0 .. ow0 + 7 (or up to OW) of
// output row oh of image n: where its floats (or, with a bit-packed output, its pixel masks)
// go and what they add.
TileEpilogue tile_epilogue(const ConvGeom& g, const Workspace& ws, const ConvIO& io,
                           const float* alpha, const float* bias, float* out, int64_t n,
                           int64_t o0, int64_t oh, int64_t ow0) {
  const bool packed_out = io.packed_out != nullptr;
  const int32_t* corr = ws.corr + ws.row_class[oh] * g.O * g.OWr;
  const int64_t at = ((n * g.O + o0) * g.OH + oh) * g.OW + ow0;
  uint8_t* bits = packed_out ? ws.masks + ((n * g.OH + oh) * (g.OWr / kTileOW) +
                                           ow0 / kTileOW) * g.O + o0
                             : nullptr;
  return {corr + o0 * g.OWr + ow0, g.OWr, alpha + o0, bias ? bias + o0 : nullptr,
          packed_out ? nullptr : out + at, io.residual ? io.residual + at : nullptr,
          g.OH * g.OW, static_cast<int32_t>(g.C * g.KH * g.KW),
          static_cast<int32_t>(std::min(kTileOW, g.OW - ow0)), bits,
          packed_out ? io.out_scale + o0 : nullptr, packed_out ? io.out_threshold + o0 : nullptr};
}

// ---- the AVX2 kernel (weight rows, counts, work items)
#include "xnor_avx2.h"

// Popcounts of `taps` consecutive taps of n bytes each (padding bits are 0), word by word
// with count(uint64_t), four words at a time into independent sums (one running sum made
// the border table 5 % of a batch-1 call at 512 channels: a chain of dependent adds).
template <typename CountWord>
__attribute__((always_inline)) inline void tap_popcounts(const uint8_t* p, int64_t taps,
                                                         int64_t n, int64_t* pops,
                                                         CountWord count) {
  for (int64_t t = 0; t < taps; ++t, p += n) {
    int64_t pop[4] = {0, 0, 0, 0}, i = 0;
    for (; i + 32 <= n; i += 32)
      for (int k = 0; k < 4; ++k) {
        uint64_t v;
        std::memcpy(&v, p + i + 8 * k, 8);
        pop[k] += count(v);
      }
    for (; i + 8 <= n; i += 8) {
      uint64_t v;
      std::memcpy(&v, p + i, 8);
      pop[0] += count(v);
    }
    for (; i < n; ++i) pop[0] += count(p[i]);
    pops[t] = pop[0] + pop[1] + pop[2] + pop[3];
  }
}

// ... with the POPCNT instruction (the builtin expands to it inside this target function)
__attribute__((target("popcnt")))
void tap_popcounts_hw(const uint8_t* p, int64_t taps, int64_t n, int64_t* pops) {
  tap_popcounts(p, taps, n, pops, [](uint64_t v) { return __builtin_popcountll(v); });
}

// ... without it (SWAR)
void tap_popcounts_portable(const uint8_t* p, int64_t taps, int64_t n, int64_t* pops) {
  tap_popcounts(p, taps, n, pops, [](uint64_t v) { return popcount64(v); });
}

// Popcounts of `taps` consecutive taps of n bytes each (AVX-512 VPOPCNTQ).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positive (reduce)
__attribute__((target("avx512f,avx512bw,avx512vpopcntdq")))
void tap_popcounts_avx512(const uint8_t* p, int64_t taps, int64_t n, int64_t* pops) {
  for (int64_t t = 0; t < taps; ++t, p += n) {
    __m512i acc = _mm512_setzero_si512();
    for (int64_t i = 0; i < n; i += 64) {
      const int64_t left = std::min<int64_t>(64, n - i);
      const __mmask64 m = left == 64 ? ~0ULL : (1ULL << left) - 1;
      acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_maskz_loadu_epi8(m, p + i)));
    }
    pops[t] = _mm512_reduce_add_epi64(acc);
  }
}
#pragma GCC diagnostic pop

// 2-D prefix sums of the taps' popcounts (the -1 weights) of channel o:
// pre[i * (KW + 1) + j] = sum over kh < i, kw < j.
// `popcnt`: 0 portable, 1 POPCNT, 2 AVX-512 VPOPCNTQ. The taps' counts are independent and
// taken first; the prefix sums follow.
void tap_prefix(const ConvGeom& g, const uint8_t* w, int64_t o, int64_t* pre, int popcnt) {
  const int64_t stride = g.KW + 1;
  int64_t* pops = pre + (g.KH + 1) * stride;  // KH * KW scratch after the table
  const uint8_t* taps = w + o * g.KH * g.KW * g.Cb;
  if (popcnt == 2) tap_popcounts_avx512(taps, g.KH * g.KW, g.Cb, pops);
  else if (popcnt == 1) tap_popcounts_hw(taps, g.KH * g.KW, g.Cb, pops);
  else tap_popcounts_portable(taps, g.KH * g.KW, g.Cb, pops);
  for (int64_t j = 0; j < stride; ++j) pre[j] = 0;
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    pre[(kh + 1) * stride] = 0;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t pop = pops[kh * g.KW + kw];
      pre[(kh + 1) * stride + kw + 1] =
          pop + pre[kh * stride + kw + 1] + pre[(kh + 1) * stride + kw] - pre[kh * stride + kw];
    }
  }
}

// Border table. A window whose valid taps are the rectangle [kh0, kh1) x [kw0, kw1) reads
// zero bits (+1) at the other taps, which added popcount(w_tap) to its count, and counts
// C per tap it does not have:  true dot = C * n_valid - 2 * (count - (pop_all - pop_valid)),
// i.e. corr = C * n_valid - C*KH*KW + 2 * (pop_all - pop_valid), pop_valid a rectangle sum
// of the prefix table. Rows with the same (kh0, kh1) share a class; interior rows are class 0.
// Row and column classes of the border table: output rows (columns) with the same range of
// valid kh (kw) taps share a class; class 0 is the full range (interior).
struct BorderClasses {
  std::vector<int64_t> kh_lo, kh_hi, kw_lo, kw_hi;
  std::vector<int32_t> col_class;  // (OWr,)
};

// Classes of one axis: out[i] = index of the range [lo, hi) of valid taps of output i (of
// `count`) in (lo, hi), appended when new; class 0 is the full range [0, k).
void tap_classes(int64_t count, int64_t stride, int64_t pad, int64_t dil, int64_t k,
                 int64_t extent, std::vector<int64_t>* lo, std::vector<int64_t>* hi,
                 int32_t* out) {
  lo->assign(1, 0);
  hi->assign(1, k);
  for (int64_t i = 0; i < count; ++i) {
    int64_t a, b;
    valid_taps(i * stride - pad, dil, k, extent, &a, &b);
    size_t cls = 0;
    while (cls < lo->size() && !((*lo)[cls] == a && (*hi)[cls] == b)) ++cls;
    if (cls == lo->size()) {
      lo->push_back(a);
      hi->push_back(b);
    }
    out[i] = static_cast<int32_t>(cls);
  }
}

// Fills row_class (OH,) and returns the classes (serial, O(OH + OW)). The rounding-up
// columns beyond OW use the interior class (their outputs are not stored).
BorderClasses border_classes(const ConvGeom& g, int32_t* row_class) {
  BorderClasses bc;
  bc.col_class.assign(g.OWr, 0);
  tap_classes(g.OH, g.SH, g.PH, g.DH, g.KH, g.H, &bc.kh_lo, &bc.kh_hi, row_class);
  tap_classes(g.OW, g.SW, g.PW, g.DW, g.KW, g.W, &bc.kw_lo, &bc.kw_hi, bc.col_class.data());
  return bc;
}

// The border table rows of output channel o: corr[(row class, o, ow)]. `pre` has
// (KH + 1) * (KW + 1) + KH * KW entries, `value` one per column class. The class ranges are
// inside [0, KH] x [0, KW] (valid_taps), so every index below is in the prefix table.
void border_rows(const ConvGeom& g, const uint8_t* w, const BorderClasses& bc, int64_t o,
                 int popcnt, int64_t* pre, int32_t* value, int32_t* corr) {
  const int64_t stride = g.KW + 1, full = g.C * g.KH * g.KW;
  const int64_t row_classes = static_cast<int64_t>(bc.kh_lo.size());
  const int64_t col_classes = static_cast<int64_t>(bc.kw_lo.size());
  tap_prefix(g, w, o, pre, popcnt);
  const int64_t all = pre[g.KH * stride + g.KW];
  for (int64_t cls = 0; cls < row_classes; ++cls) {
    const int64_t kh0 = bc.kh_lo[cls], kh1 = bc.kh_hi[cls];
    for (int64_t cc = 0; cc < col_classes; ++cc) {
      const int64_t kw0 = bc.kw_lo[cc], kw1 = bc.kw_hi[cc];
      const int64_t inside = pre[kh1 * stride + kw1] - pre[kh0 * stride + kw1] -
                             pre[kh1 * stride + kw0] + pre[kh0 * stride + kw0];
      value[cc] = static_cast<int32_t>(g.C * (kh1 - kh0) * (kw1 - kw0) - full +
                                       2 * (all - inside));
    }
    int32_t* dst = corr + (cls * g.O + o) * g.OWr;
    for (int64_t ow = 0; ow < g.OWr; ++ow) dst[ow] = value[bc.col_class[ow]];
  }
}

// The border table rows of output channels o .. o + 7 (all < O) for the AVX2 and AVX-512
// kernels (every CPU with AVX-512 has AVX2): the
// values of border_rows, eight channels per vector. The per-tap popcounts are taken channel by
// channel (POPCNT), the prefix sums and the class values eight channels at a time, and the row
// of a channel in a row class is its class values permuted by the column classes (vpermd; at
// most 8 column classes: border_rows8_fits). Channel by channel, the prefix table, class
// values and expansion of border_rows took 8-12 % of a batch-1 call at 256-512 channels.
inline bool border_rows8_fits(const BorderClasses& bc) { return bc.kw_lo.size() <= 8; }

struct alignas(32) Lanes8 {  // one int32 per channel of the eight
  int32_t v[8];
};

// Scratch of border_rows8_avx2: taps int64 popcounts, then taps + (KH + 1) * (KW + 1) Lanes8.
struct Border8Scratch {
  std::vector<int64_t> pops;
  std::vector<Lanes8> lanes;
  explicit Border8Scratch(const ConvGeom& g)
      : pops(static_cast<size_t>(g.KH * g.KW)),
        lanes(static_cast<size_t>(g.KH * g.KW + (g.KH + 1) * (g.KW + 1))) {}
};

__attribute__((target("avx2"), always_inline)) inline __m256i load(const Lanes8& l) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(l.v));
}
__attribute__((target("avx2"), always_inline)) inline void store(Lanes8* l, __m256i v) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(l->v), v);
}

__attribute__((target("avx2,popcnt")))
void border_rows8_avx2(const ConvGeom& g, const uint8_t* w, const BorderClasses& bc, int64_t o,
                       Border8Scratch* scratch, int32_t* corr) {
  const int64_t taps = g.KH * g.KW, stride = g.KW + 1;
  Lanes8* tap = scratch->lanes.data();  // tap[t].v[j]: popcount of tap t of channel o + j
  Lanes8* pre = tap + taps;             // 2-D prefix sums of tap, (KH + 1) x (KW + 1)
  for (int j = 0; j < 8; ++j) {
    tap_popcounts(w + (o + j) * taps * g.Cb, taps, g.Cb, scratch->pops.data(),
                  [](uint64_t v) { return __builtin_popcountll(v); });
    for (int64_t t = 0; t < taps; ++t) tap[t].v[j] = static_cast<int32_t>(scratch->pops[t]);
  }
  for (int64_t j = 0; j < stride; ++j) store(pre + j, _mm256_setzero_si256());
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    store(pre + (kh + 1) * stride, _mm256_setzero_si256());
    for (int64_t kw = 0; kw < g.KW; ++kw)
      store(pre + (kh + 1) * stride + kw + 1,
            _mm256_sub_epi32(_mm256_add_epi32(_mm256_add_epi32(load(tap[kh * g.KW + kw]),
                                                               load(pre[kh * stride + kw + 1])),
                                              load(pre[(kh + 1) * stride + kw])),
                             load(pre[kh * stride + kw])));
  }
  const __m256i all = load(pre[g.KH * stride + g.KW]);
  const int64_t full = g.C * g.KH * g.KW;
  const int64_t row_classes = static_cast<int64_t>(bc.kh_lo.size());
  const int64_t col_classes = static_cast<int64_t>(bc.kw_lo.size());
  Lanes8 value[8] = {};  // value[column class].v[channel]
  Lanes8 by_class;       // one channel's values, lane = column class
  for (int64_t cls = 0; cls < row_classes; ++cls) {
    const int64_t kh0 = bc.kh_lo[cls], kh1 = bc.kh_hi[cls];
    for (int64_t cc = 0; cc < col_classes; ++cc) {
      const int64_t kw0 = bc.kw_lo[cc], kw1 = bc.kw_hi[cc];
      const __m256i inside = _mm256_add_epi32(
          _mm256_sub_epi32(_mm256_sub_epi32(load(pre[kh1 * stride + kw1]),
                                            load(pre[kh0 * stride + kw1])),
                           load(pre[kh1 * stride + kw0])),
          load(pre[kh0 * stride + kw0]));
      store(value + cc,
            _mm256_add_epi32(
                _mm256_set1_epi32(static_cast<int32_t>(g.C * (kh1 - kh0) * (kw1 - kw0) - full)),
                _mm256_slli_epi32(_mm256_sub_epi32(all, inside), 1)));
    }
    for (int j = 0; j < 8; ++j) {
      for (int cc = 0; cc < 8; ++cc) by_class.v[cc] = value[cc].v[j];
      const __m256i row = load(by_class);
      int32_t* dst = corr + (cls * g.O + o + j) * g.OWr;
      for (int64_t ow0 = 0; ow0 < g.OWr; ow0 += 8) {
        const __m256i idx =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bc.col_class.data() + ow0));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + ow0),
                            _mm256_permutevar8x32_epi32(row, idx));
      }
    }
  }
}

}  // namespace

// ---- public API -----------------------------------------------------------------------

// Upper bound of the row classes of the border table (interior + the border rows).
int64_t max_row_classes(const ConvGeom& g) {
  int64_t border = 0;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    int64_t a, b;
    valid_taps(oh * g.SH - g.PH, g.DH, g.KH, g.H, &a, &b);
    border += (a != 0 || b != g.KH);
  }
  return 1 + border;
}

void finish_geometry(ConvGeom* g) {
  g->OH = (g->H + 2 * g->PH - g->DH * (g->KH - 1) - 1) / g->SH + 1;
  g->OW = (g->W + 2 * g->PW - g->DW * (g->KW - 1) - 1) / g->SW + 1;
  g->Wc = (g->C + 63) / 64;
  g->Cb = (g->C + 7) / 8;
  g->Hp = g->H + 2 * g->PH;
  const int64_t wp = g->W + 2 * g->PW;
  const int64_t tiles_ow = (g->OW + kTileOW - 1) / kTileOW * kTileOW;
  // every tile reads 8 words from j = ow0 + (kw * DW) / SW: keep them inside the row
  g->OWr = (g->OW + kTileOW - 1) / kTileOW * kTileOW;
  g->Lp = std::max((wp + g->SW - 1) / g->SW, tiles_ow + ((g->KW - 1) * g->DW) / g->SW);
  g->Ob = (g->O + 7) / 8;
  g->Wp = wp;
  g->C4 = 16 * g->Wc;
}

size_t packed_input_bytes(const ConvGeom& g) {
  const size_t words = sizeof(uint64_t) * static_cast<size_t>(g.N * g.Hp * g.Wc * g.SW * g.Lp);
  const size_t nibbles = static_cast<size_t>(g.N * g.Hp * g.Wp * g.C4);
  return std::max(words, nibbles);
}

size_t corr_bytes(const ConvGeom& g) {
  return sizeof(int32_t) * static_cast<size_t>(max_row_classes(g) * g.O * g.OWr);
}

size_t thread_buffer_bytes(const ConvGeom& g) {
  return std::max(sizeof(uint64_t) * static_cast<size_t>(kQMax * g.KH * g.KW * g.Wc),
                  avx2_scratch_bytes(g));
}

size_t output_mask_bytes(const ConvGeom& g) {
  return static_cast<size_t>(g.N * g.OH * (g.OWr / kTileOW) * g.O);
}

size_t workspace_bytes(const ConvGeom& g, bool packed_output) {
  return align64(packed_input_bytes(g)) +
         align64(sizeof(int64_t) * g.KH * g.KW * g.Wc) +
         align64(sizeof(int32_t) * g.KH * g.KW * g.C4) + align64(corr_bytes(g)) +
         align64(sizeof(int32_t) * g.OH) +
         static_cast<size_t>(omp_get_max_threads()) * align64(thread_buffer_bytes(g)) +
         (packed_output ? output_mask_bytes(g) : 0);
}

// The AVX-512 kernel needs AVX512F, AVX512VL, AVX512BW and AVX512_VPOPCNTDQ (see xnor_kernel.h).
bool cpu_has_avx512_vpopcnt() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vpopcntdq");
#else
  return false;
#endif
}

// The AVX2 kernel needs AVX2 and POPCNT.
bool cpu_has_avx2_popcnt() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
#else
  return false;
#endif
}

// The POPCNT instruction (the portable kernel uses it when present).
// MXCOMPRESS_XNOR_POPCNT=0 turns it off, so the tests cover the path of CPUs without it.
bool portable_uses_popcnt() {
  const char* env = std::getenv("MXCOMPRESS_XNOR_POPCNT");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("popcnt");
#else
  return true;  // elsewhere __builtin_popcountll is the target's own instruction sequence
#endif
}

int resolve_kernel(int choice) {
  const char* env = std::getenv("MXCOMPRESS_XNOR_KERNEL");
  if (env != nullptr) {
    if (std::strcmp(env, "portable") == 0) choice = kPortable;
    else if (std::strcmp(env, "avx2") == 0) choice = kAvx2;
    else if (std::strcmp(env, "avx512") == 0) choice = kAvx512;
    else if (std::strcmp(env, "auto") == 0) choice = kAuto;
  }
  if (choice == kAuto) choice = kAvx512;
  if (choice == kAvx512 && !cpu_has_avx512_vpopcnt()) choice = kAvx2;
  if (choice == kAvx2 && !cpu_has_avx2_popcnt()) choice = kPortable;
  return choice;
}

bool weight_padding_ok(const ConvGeom& g, const uint8_t* w) {
  const int64_t used = g.C % 8;  // channels in the last byte of a tap (0: all 8)
  if (used == 0) return true;
  const uint8_t pad_mask = static_cast<uint8_t>(~((1u << used) - 1));
  const int64_t taps = g.O * g.KH * g.KW;
  for (int64_t t = 0; t < taps; ++t) {
    if (w[t * g.Cb + g.Cb - 1] & pad_mask) return false;
  }
  return true;
}

void conv_forward(const ConvGeom& g, const float* x, const uint8_t* w, const float* alpha,
                  const float* bias, float* out, void* ws_raw, int kernel, const ConvIO& io) {
  const bool packed_out = io.packed_out != nullptr;
  Workspace ws = carve(g, ws_raw, packed_out);
  const InputSign in = {io.in_scale, io.in_threshold};
  int which = resolve_kernel(kernel);
  if (which == kAvx2 && !avx2_offsets_fit(g)) which = kPortable;
  const bool hw_popcnt = which != kPortable || portable_uses_popcnt();
  const int64_t K = g.KH * g.KW * g.Wc;
  uint8_t* nib = reinterpret_cast<uint8_t*>(ws.packed);  // the AVX2 kernel's input layout

  // zero border = +1, fixed in the epilogue
  if (which == kAvx2) std::memset(nib, 0, static_cast<size_t>(g.N * g.Hp * g.Wp * g.C4));
  else std::memset(ws.packed, 0, packed_input_bytes(g));
  const int64_t HB = (g.H + kPackRows - 1) / kPackRows;
  const int64_t row_words = g.Wc * g.SW * g.Lp;
  for (int64_t kh = 0, k = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw)
      for (int64_t cw = 0; cw < g.Wc; ++cw, ++k)
        ws.in_off[k] = kh * g.DH * row_words + cw * g.SW * g.Lp +
                       ((kw * g.DW) % g.SW) * g.Lp + (kw * g.DW) / g.SW;
  std::vector<Avx2Block> blocks;
  if (which == kAvx2) {
    for (int64_t kh = 0, s = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw)
        for (int64_t j = 0; j < g.C4; ++j, ++s)
          ws.soff[s] = static_cast<int32_t>((kh * g.DH * g.Wp + kw * g.DW) * g.C4 + j);
    blocks = avx2_blocks(g);
  }
  const BorderClasses bc = border_classes(g, ws.row_class);
  const int popcnt = which == kAvx512 ? 2 : hw_popcnt ? 1 : 0;

  // One job of the op's threads (xnor_team.h: at most omp_get_max_threads() members, the
  // caller one of them; the op's helper threads, or an OpenMP region under NaiveEngine), loops
  // split into one share per member with work stealing, and waits (Member::sync) where a loop
  // reads what earlier ones wrote: packing and the border table are independent (no wait
  // between them); the wait after the border table makes both complete before the tiles:
  //  1. pack the activations, (image, block of input rows, channel word) per item (a
  //     bit-packed input is copied, (image, row, channel word) per item, for every kernel);
  //  2. the border table, one output channel per item;
  //  3. the tiles, (channel block, image, block of output rows) per item. Each thread
  //     copies the weights of its channel block into a private buffer in the layout of its
  //     micro-kernel (AVX-512 and portable: Q * K * 8 bytes at most, L1-resident; AVX2: the
  //     block's nibble rows, 128 * KH * KW * C4 bytes at most, L2-resident) and sweeps
  //     the rows; the packed image rows are shared in L2. AVX2: see tiles_avx2 (xnor_avx2.h).
  // With a bit-packed output the tiles store pixel masks instead of floats, and a last loop
  // (after a wait) transposes them into the output, (image, output row) per item.
  const int64_t Q = which == kAvx512 ? kQ512 : kQPortable;
  const WeightLayout layout = which == kAvx512 ? kWordsByChannel : kWordsByStep;
  const int64_t OB = (g.O + Q - 1) / Q;
  const int64_t RB = (g.OH + kRows - 1) / kRows;
  Team::run(omp_get_max_threads(), [&](const Member& m) {
    if (io.packed_in != nullptr && which == kAvx2) {
      for_share(m, g.N, g.H, g.Wc, [&](int64_t n, int64_t h, int64_t cw) {
        copy_packed_row_nibbles(g, io.packed_in, nib, n, h, cw);
      });
    } else if (io.packed_in != nullptr) {
      for_share(m, g.N, g.H, g.Wc, [&](int64_t n, int64_t h, int64_t cw) {
        copy_packed_row(g, io.packed_in, ws.packed, n, h, cw);
      });
    } else if (which == kAvx512) {
      for_share(m, g.N, HB, g.Wc, [&](int64_t n, int64_t hb, int64_t cw) {
        pack_rows_avx512(g, x, in, ws.packed, n, hb * kPackRows,
                         std::min(g.H, (hb + 1) * kPackRows), cw);
      });
    } else if (which == kAvx2) {
      for_share(m, g.N, HB, g.Wc, [&](int64_t n, int64_t hb, int64_t cw) {
        pack_rows_avx2(g, x, in, nib, n, hb * kPackRows, std::min(g.H, (hb + 1) * kPackRows),
                       cw);
      });
    } else {
      for_share(m, g.N, g.H, g.Wc, [&](int64_t n, int64_t h, int64_t cw) {
        pack_row_portable(g, x, in, ws.packed, n, h, cw);
      });
    }

    {
      std::vector<int64_t> pre((g.KH + 1) * (g.KW + 1) + g.KH * g.KW);
      std::vector<int32_t> value(bc.kw_lo.size());
      if (which != kPortable && border_rows8_fits(bc)) {  // eight channels at a time (AVX2)
        Border8Scratch scratch(g);
        for_share(m, 1, 1, (g.O + 7) / 8, [&](int64_t, int64_t, int64_t ob) {
          if (ob * 8 + 8 <= g.O) {
            border_rows8_avx2(g, w, bc, ob * 8, &scratch, ws.corr);
          } else {
            for (int64_t o = ob * 8; o < g.O; ++o)
              border_rows(g, w, bc, o, popcnt, pre.data(), value.data(), ws.corr);
          }
        });
      } else {
        for_share(m, 1, 1, g.O, [&](int64_t, int64_t, int64_t o) {
          border_rows(g, w, bc, o, popcnt, pre.data(), value.data(), ws.corr);
        });
      }
    }
    m.sync();  // the packed input and the border table are complete

    char* thread_buffer = ws.threads + m.id * align64(thread_buffer_bytes(g));
    if (which == kAvx2) {
      tiles_avx2(g, ws, blocks, w, alpha, bias, out, io, thread_buffer, m);
    } else {
      uint64_t* wq = reinterpret_cast<uint64_t*>(thread_buffer);
      int64_t block_for = -1;
      for_share(m, OB, g.N, RB, [&](int64_t ob, int64_t n, int64_t rb) {
        const int64_t o0 = ob * Q;
        const int64_t qn = std::min<int64_t>(Q, g.O - o0);
        if (block_for != ob) {
          block_weights(g, w, o0, qn, wq, layout);
          block_for = ob;
        }
        const int64_t oh_end = std::min(g.OH, (rb + 1) * kRows);
        for (int64_t oh = rb * kRows; oh < oh_end; ++oh) {
          const uint64_t* row = ws.packed + (n * g.Hp + oh * g.SH) * row_words;
          for (int64_t ow0 = 0; ow0 < g.OW; ow0 += kTileOW) {
            const TileEpilogue e = tile_epilogue(g, ws, io, alpha, bias, out, n, o0, oh, ow0);
            if (which == kAvx512)
              tile_avx512_table[qn - 1](row + ow0, ws.in_off, wq, K, e);
            else
              (hw_popcnt ? tile_popcnt_table : tile_swar_table)[qn - 1](row + ow0, ws.in_off,
                                                                        wq, K, e);
          }
        }
      });
    }

    if (packed_out) {
      m.sync();  // every mask is written
      for_share(m, 1, g.N, g.OH, [&](int64_t, int64_t n, int64_t oh) {
        if (which == kPortable) packed_output_row(g, ws.masks, io.packed_out, n, oh);
        else packed_output_row_avx2(g, ws.masks, io.packed_out, n, oh);
      });
    }
  });
}

}  // namespace xnor
