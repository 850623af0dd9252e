// Register-blocked xnor-popcount micro-kernels of xnor_kernel.cc (included there once,
// inside its anonymous namespace; not a public header). See xnor_kernel.cc for the layout.
//
// Every micro-kernel computes, for the pixels l of one tile and its Q output channels q,
//   count[q][l] = sum_k popcount(in[base + off[k] + l] ^ w[k][q])
// and applies the epilogue from registers while the counts are hot:
//   out = alpha * (full - 2 * count + corr) + bias
// (multiply, then add: the same rounding as the float reference). With a bit-packed output
// (TileEpilogue::bits) the float value is compared with the output threshold instead of
// stored, y * out_scale < out_threshold (the same float multiply and compare the packing of
// a following conv applies), and the tile stores one byte per channel: its pixel mask.
#ifndef MXCOMPRESS_XNOR_TILES_H_
#define MXCOMPRESS_XNOR_TILES_H_

// Where a tile's outputs go: output channel o0 + q, pixels ow0 .. ow0 + lanes - 1 of one
// output row.
struct TileEpilogue {
  const int32_t* corr;  // border correction of (o0, ow0); channel q at corr + q * corr_stride
  int64_t corr_stride;
  const float* alpha;   // alpha + o0
  const float* bias;    // bias + o0, or null
  float* out;           // output of (n, o0, oh, ow0); channel q at out + q * out_stride
  const float* residual;  // added to the output (same layout as out), or null
  int64_t out_stride;
  int32_t full;         // C * KH * KW
  int32_t lanes;        // valid pixels, 1..8
  // Bit-packed output (null: float output): channel q's pixel mask goes to bits[q], bit l
  // set (-1) where y_l * out_scale[q] < out_threshold[q] (NaN: clear), bits >= lanes clear;
  // `out` is not written.
  uint8_t* bits;
  const float* out_scale;      // out_scale + o0
  const float* out_threshold;  // out_threshold + o0
};

// The pixel mask of 8 float outputs (AVX compare + movemask), shared by the AVX2 and
// AVX-512 micro-kernels: bit l = (v_l * scale < threshold), ordered, so NaN gives 0.
__attribute__((target("avx2"), always_inline)) inline uint8_t threshold_mask8(
    __m256 v, float scale, float threshold, int32_t lanes) {
  const __m256 below = _mm256_cmp_ps(_mm256_mul_ps(v, _mm256_set1_ps(scale)),
                                     _mm256_set1_ps(threshold), _CMP_LT_OQ);
  return static_cast<uint8_t>(_mm256_movemask_ps(below) & ((1 << lanes) - 1));
}

// Stores the first `lanes` (1..8) floats of v at dst: one 256-bit store for a full tile,
// else 128-, 64- and 32-bit stores (vmaskmovps stores are slow on AMD Zen: a tile of 6 or 7
// pixels, the last of a 14- or 7-pixel row, would spend more on its stores than on its
// arithmetic).
__attribute__((target("avx2"), always_inline)) inline void store_lanes(float* dst, __m256 v,
                                                                        int32_t lanes) {
  if (lanes == 8) {
    _mm256_storeu_ps(dst, v);
    return;
  }
  __m128 part = _mm256_castps256_ps128(v);
  if (lanes >= 4) {
    _mm_storeu_ps(dst, part);
    part = _mm256_extractf128_ps(v, 1);
    dst += 4;
    lanes -= 4;
  }
  if (lanes >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(dst), part);
    part = _mm_movehl_ps(part, part);
    dst += 2;
    lanes -= 2;
  }
  if (lanes == 1) _mm_store_ss(dst, part);
}

// ---- AVX2: nibble-LUT popcount, byte accumulators ---------------------------------------
// A tile is 4 * P pixels (P ymm vectors, one pixel per 64-bit lane) x Q output channels.
// The input words are stored as nibble halves (half 0 = word & 0x0f.., half 1 =
// (word >> 4) & 0x0f.., at `hi_off` words after half 0) and so are the weights (step k,
// channel q: w[2 * (k * Q + q) + half]), so the popcount of each byte of (a xor w) is
// LUT[a_lo xor w_lo] + LUT[a_hi xor w_hi] with vpshufb as a 16-entry table look-up
// (the nibble-LUT popcount of Mula, Kurz & Lemire 2018, "Faster population counts using
// AVX2 instructions"): per 256 bits of input 2 vpxor, 2 vpshufb, 2 vpaddb, nothing else (the
// split done once at packing time saves the and / shift / and of the usual form). The byte
// counts are summed into 64-bit lanes with vpsadbw only every 31 steps (31 * 8 < 256: no
// byte overflows).
//
// Harley-Seal (the same paper's carry-save-adder popcount) was measured against this in a
// stand-alone copy of the loop on AMD Zen 4 without AVX-512: HS over 8 steps (whole words,
// 3 carry-save states and a byte count per accumulator) reached 233-291 G binary MAC/s, the
// split LUT 277-384 (one core shared with other jobs).
// Its carry-save adders cost 5 bitwise ops per 256-bit input, more than the 4 the split LUT
// spends on counting, and need 4 registers per accumulator.
// A per-weight LUT (the table of popcount(i xor w_nibble), i = 0..15, per weight nibble, so
// the count is one vpshufb of the input nibbles with no xor: 2 ops per 128 binary MACs of 32
// pixels, input stored as one nibble plane per 4 channels over the padded image flattened)
// was measured the same way on Zen 4 (quiet, 1 core, 3x3 C -> C, batch 1): 424 / 336 / 313 /
// 240 G useful MAC/s at 64 ch 56 px / 128 / 256 / 512 ch (28 / 14 / 7 px) against 359 / 323
// / 346 / 350 for this loop. Counted on every lane it computes it is 0.8-1.2x this loop:
// its flattened rows also compute the padding columns (2 of W + 2 per row, a quarter of the
// lanes at 7 px), and its tables take 32 bytes per weight nibble (a 16-byte table broadcast
// from memory was slower) and are read again for every tile; it was not adopted. Tile
// variants that keep the sums of every 31 steps in memory or load one nibble half at a time
// (fewer live registers) ran within 2 % of this loop.
//
// Register blocking for the 16 ymm registers: P = 2 (8 pixels), Q = 4 channels: 8 byte
// accumulators, 4 input vectors (2 halves x 2 pixel vectors) loaded once per step, the LUT
// and 2 broadcast weight half-words; every input vector is used Q times and every weight
// broadcast P times (Q = 3, 5, 6, 8 measured the same within noise; so did weights stored
// pre-broadcast).
template <int P, int Q>
__attribute__((target("avx2")))
void tile_avx2(const uint64_t* in, const int64_t* off, int64_t hi_off, const uint64_t* w,
               int64_t K, const TileEpilogue& e) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i zero = _mm256_setzero_si256();
  __m256i total[P][Q];
  for (int p = 0; p < P; ++p)
    for (int q = 0; q < Q; ++q) total[p][q] = zero;
  for (int64_t k0 = 0; k0 < K; k0 += 31) {
    const int64_t k1 = std::min(K, k0 + 31);
    __m256i acc[P][Q];
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q) acc[p][q] = zero;
    for (int64_t k = k0; k < k1; ++k) {
      const uint64_t* src = in + off[k];
      const uint64_t* wk = w + 2 * Q * k;
      __m256i a[P], b[P];
      for (int p = 0; p < P; ++p) {
        a[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 4 * p));
        b[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + hi_off + 4 * p));
      }
      for (int q = 0; q < Q; ++q) {
        const __m256i wl = _mm256_set1_epi64x(static_cast<long long>(wk[2 * q]));
        const __m256i wh = _mm256_set1_epi64x(static_cast<long long>(wk[2 * q + 1]));
        for (int p = 0; p < P; ++p) {
          acc[p][q] = _mm256_add_epi8(acc[p][q],
                                      _mm256_shuffle_epi8(lut, _mm256_xor_si256(a[p], wl)));
          acc[p][q] = _mm256_add_epi8(acc[p][q],
                                      _mm256_shuffle_epi8(lut, _mm256_xor_si256(b[p], wh)));
        }
      }
    }
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q)
        total[p][q] = _mm256_add_epi64(total[p][q], _mm256_sad_epu8(acc[p][q], zero));
  }
  // epilogue: 64-bit lane sums (< 2^31) -> 8 int32 per channel (pixels of vector 1 in the
  // upper half), then the float output of the valid lanes
  const __m256i low_dwords = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i full = _mm256_set1_epi32(e.full);
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(e.lanes),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int q = 0; q < Q; ++q) {
    const __m256i lo = _mm256_permutevar8x32_epi32(total[0][q], low_dwords);
    const __m256i hi = P > 1 ? _mm256_permutevar8x32_epi32(total[P - 1][q], low_dwords) : zero;
    const __m256i count = _mm256_permute2x128_si256(lo, hi, 0x20);
    const __m256i fix = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(e.corr + q * e.corr_stride));
    const __m256 dot = _mm256_cvtepi32_ps(
        _mm256_add_epi32(_mm256_sub_epi32(full, _mm256_slli_epi32(count, 1)), fix));
    __m256 v = _mm256_mul_ps(dot, _mm256_set1_ps(e.alpha[q]));
    if (e.bias != nullptr) v = _mm256_add_ps(v, _mm256_set1_ps(e.bias[q]));
    if (e.residual != nullptr) {
      const float* r = e.residual + q * e.out_stride;
      v = _mm256_add_ps(v, e.lanes == 8 ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, mask));
    }
    if (e.bits != nullptr) {
      e.bits[q] = threshold_mask8(v, e.out_scale[q], e.out_threshold[q], e.lanes);
      continue;
    }
    store_lanes(e.out + q * e.out_stride, v, e.lanes);
  }
}

// ---- AVX-512 (VPOPCNTQ) -------------------------------------------------------------------
// One zmm = the 8 pixels of a tile, whole 64-bit words (no nibble split); the Q <= 24
// accumulators live in the 32 zmm registers. Weights w[q * K + k]. Counts < 2^31 for any K
// the op allows.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12 false positive in vpmovqd's header
template <int Q>
__attribute__((target("avx512f,avx512vl,avx512vpopcntdq,avx2")))
void tile_avx512(const uint64_t* in, const int64_t* off, const uint64_t* w, int64_t K,
                 const TileEpilogue& e) {
  __m512i acc[Q];
  for (int q = 0; q < Q; ++q) acc[q] = _mm512_setzero_si512();
  for (int64_t k = 0; k < K; ++k) {
    const __m512i a = _mm512_loadu_si512(in + off[k]);
    for (int q = 0; q < Q; ++q) {
      const __m512i wv = _mm512_set1_epi64(static_cast<long long>(w[q * K + k]));
      acc[q] = _mm512_add_epi64(acc[q], _mm512_popcnt_epi64(_mm512_xor_si512(a, wv)));
    }
  }
  const __m256i full = _mm256_set1_epi32(e.full);
  const __mmask8 lanes = static_cast<__mmask8>((1u << e.lanes) - 1);
  for (int q = 0; q < Q; ++q) {
    const __m256i count = _mm512_cvtepi64_epi32(acc[q]);
    const __m256i fix = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(e.corr + q * e.corr_stride));
    const __m256 dot = _mm256_cvtepi32_ps(
        _mm256_add_epi32(_mm256_sub_epi32(full, _mm256_slli_epi32(count, 1)), fix));
    __m256 v = _mm256_mul_ps(dot, _mm256_set1_ps(e.alpha[q]));
    if (e.bias != nullptr) v = _mm256_add_ps(v, _mm256_set1_ps(e.bias[q]));
    if (e.residual != nullptr)
      v = _mm256_add_ps(v, _mm256_maskz_loadu_ps(lanes, e.residual + q * e.out_stride));
    if (e.bits != nullptr) {
      e.bits[q] = threshold_mask8(v, e.out_scale[q], e.out_threshold[q], e.lanes);
      continue;
    }
    _mm256_mask_storeu_ps(e.out + q * e.out_stride, lanes, v);
  }
}
#pragma GCC diagnostic pop

// ---- portable: 64-bit words, scalar popcount -----------------------------------------------
// A tile is 8 pixels x Q channels of whole words (weights w[k * Q + q]), swept in passes of
// 4 pixels: each step loads the Q weight words once and xors each with the 4 input words,
// 4 * Q accumulators (Q = 4 measured best of Q = 2..4 with 4 or 8 pixels per pass).
// Compiled twice: with the POPCNT instruction (__builtin_popcountll inside a
// target("popcnt") function, chosen at run time when the CPU has it: every x86-64 CPU since
// 2008-2010) and without (SWAR popcount64, any CPU).
struct PopcountHw {
  __attribute__((always_inline)) int64_t operator()(uint64_t v) const {
    return __builtin_popcountll(v);
  }
};
struct PopcountSwar {
  __attribute__((always_inline)) int64_t operator()(uint64_t v) const { return popcount64(v); }
};

template <int Q, typename Popcount>
__attribute__((always_inline)) inline void tile_scalar(const uint64_t* in, const int64_t* off,
                                                       const uint64_t* w, int64_t K,
                                                       const TileEpilogue& e, Popcount pop) {
  constexpr int kLanes = 4;
  for (int l0 = 0; l0 < e.lanes; l0 += kLanes) {  // kLanes pixels per pass
    int64_t acc[Q][kLanes];
    for (int q = 0; q < Q; ++q)
      for (int l = 0; l < kLanes; ++l) acc[q][l] = 0;
    for (int64_t k = 0; k < K; ++k) {
      const uint64_t* src = in + off[k] + l0;
      for (int q = 0; q < Q; ++q) {
        const uint64_t wv = w[k * Q + q];
        for (int l = 0; l < kLanes; ++l) acc[q][l] += pop(src[l] ^ wv);
      }
    }
    const int lanes = std::min(kLanes, e.lanes - l0);
    for (int q = 0; q < Q; ++q) {
      const float a = e.alpha[q], b = e.bias != nullptr ? e.bias[q] : 0.0f;
      const int32_t* fix = e.corr + q * e.corr_stride + l0;
      const float* r = e.residual != nullptr ? e.residual + q * e.out_stride + l0 : nullptr;
      float y[kLanes];
      for (int l = 0; l < lanes; ++l) {
        const float v = a * static_cast<float>(e.full - 2 * acc[q][l] + fix[l]);
        const float vb = e.bias != nullptr ? v + b : v;
        y[l] = r != nullptr ? vb + r[l] : vb;
      }
      if (e.bits != nullptr) {  // the pass of pixels l0 .. l0 + 3 sets their bits
        const float s = e.out_scale[q], t = e.out_threshold[q];
        unsigned mask = l0 == 0 ? 0u : e.bits[q];
        for (int l = 0; l < lanes; ++l) mask |= static_cast<unsigned>(y[l] * s < t) << (l0 + l);
        e.bits[q] = static_cast<uint8_t>(mask);
      } else {
        float* dst = e.out + q * e.out_stride + l0;
        for (int l = 0; l < lanes; ++l) dst[l] = y[l];
      }
    }
  }
}

template <int Q>
__attribute__((target("popcnt")))
void tile_portable_popcnt(const uint64_t* in, const int64_t* off, int64_t, const uint64_t* w,
                          int64_t K, const TileEpilogue& e) {
  tile_scalar<Q>(in, off, w, K, e, PopcountHw());
}

template <int Q>
void tile_portable_swar(const uint64_t* in, const int64_t* off, int64_t, const uint64_t* w,
                        int64_t K, const TileEpilogue& e) {
  tile_scalar<Q>(in, off, w, K, e, PopcountSwar());
}

// ---- dispatch tables ------------------------------------------------------------------------
typedef void (*tile_fn)(const uint64_t*, const int64_t*, int64_t, const uint64_t*, int64_t,
                        const TileEpilogue&);
typedef void (*tile512_fn)(const uint64_t*, const int64_t*, const uint64_t*, int64_t,
                           const TileEpilogue&);

template <int P, int... Q>
constexpr std::array<tile_fn, sizeof...(Q)> tile_avx2_row(std::integer_sequence<int, Q...>) {
  return {{&tile_avx2<P, Q + 1>...}};
}
template <int... Q>
constexpr std::array<tile_fn, sizeof...(Q)> tile_popcnt_row(std::integer_sequence<int, Q...>) {
  return {{&tile_portable_popcnt<Q + 1>...}};
}
template <int... Q>
constexpr std::array<tile_fn, sizeof...(Q)> tile_swar_row(std::integer_sequence<int, Q...>) {
  return {{&tile_portable_swar<Q + 1>...}};
}
template <int... Q>
constexpr std::array<tile512_fn, sizeof...(Q)> tile_avx512_row(
    std::integer_sequence<int, Q...>) {
  return {{&tile_avx512<Q + 1>...}};
}

// [P - 1][Q - 1]: AVX2 micro-kernel for P vectors of 4 pixels and Q output channels
const std::array<tile_fn, kQ> tile_avx2_table[2] = {
    tile_avx2_row<1>(std::make_integer_sequence<int, kQ>()),
    tile_avx2_row<2>(std::make_integer_sequence<int, kQ>())};
// [Q - 1]: portable micro-kernels (8 pixels), with and without POPCNT
const std::array<tile_fn, kQPortable> tile_popcnt_table =
    tile_popcnt_row(std::make_integer_sequence<int, kQPortable>());
const std::array<tile_fn, kQPortable> tile_swar_table =
    tile_swar_row(std::make_integer_sequence<int, kQPortable>());
// [Q - 1]: AVX-512 micro-kernel for Q output channels (8 pixels)
const std::array<tile512_fn, kQ512> tile_avx512_table =
    tile_avx512_row(std::make_integer_sequence<int, kQ512>());

#endif  // MXCOMPRESS_XNOR_TILES_H_
