// Register-blocked xnor-popcount micro-kernels of xnor_kernel.cc (included there once,
// inside its anonymous namespace; not a public header). See xnor_kernel.cc for the layout.
//
// counts[q * kTileOW + l] = sum_k popcount(in[base + off[k] + l] ^ w[q][k]) for the 4 * P
// pixels l of a tile and its Q output channels, with the words stored as nibble halves.
#ifndef MXCOMPRESS_XNOR_TILES_H_
#define MXCOMPRESS_XNOR_TILES_H_

// ---- micro-kernels ------------------------------------------------------------------
// counts[q * kTileOW + l] = sum_k popcount(in[base + off[k] + l] ^ w[q][k]), l < 4 * P.

template <int P, int Q>
__attribute__((target("avx2,popcnt")))
void tile_avx2(const uint64_t* in, const int64_t* off, int64_t hi_off, const uint64_t* w,
               int64_t K, int32_t* counts) {
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
      __m256i a[P], b[P];
      for (int p = 0; p < P; ++p) {
        a[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 4 * p));
        b[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + hi_off + 4 * p));
      }
      for (int q = 0; q < Q; ++q) {
        const uint64_t* wk = w + 2 * (q * K + k);
        const __m256i wl = _mm256_set1_epi64x(static_cast<long long>(wk[0]));
        const __m256i wh = _mm256_set1_epi64x(static_cast<long long>(wk[1]));
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
  // 64-bit lane sums (< 2^31) -> 8 packed int32 per output channel
  const __m256i low_dwords = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  for (int q = 0; q < Q; ++q) {
    const __m256i a = _mm256_permutevar8x32_epi32(total[0][q], low_dwords);
    const __m256i b = P > 1 ? _mm256_permutevar8x32_epi32(total[P - 1][q], low_dwords) : zero;
    _mm256_store_si256(reinterpret_cast<__m256i*>(counts + q * kTileOW),
                       _mm256_permute2x128_si256(a, b, 0x20));
  }
}

// Where a tile's outputs go, for micro-kernels with the epilogue fused in: output channel
// o0 + q, pixels ow0 .. ow0 + lanes - 1 of one output row.
struct TileEpilogue {
  const int32_t* corr;  // border correction of (o0, ow0); channel q at corr + q * corr_stride
  int64_t corr_stride;
  const float* alpha;   // alpha + o0
  const float* bias;    // bias + o0, or null
  float* out;           // output of (n, o0, oh, ow0); channel q at out + q * out_stride
  int64_t out_stride;
  int32_t full;         // C * KH * KW
  int32_t lanes;        // valid pixels, 1..8
};

// AVX-512 (VPOPCNTQ): one zmm = the 8 pixels of a tile, whole 64-bit words (no nibble split);
// the Q <= 24 accumulators live in the 32 zmm registers. The epilogue is fused:
// out = alpha * (full - 2 * count + corr) + bias (multiply, then add: the same rounding as
// the float reference). Counts < 2^31 for any K the op allows.
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
    _mm256_mask_storeu_ps(e.out + q * e.out_stride, lanes, v);
  }
}
#pragma GCC diagnostic pop

template <int P, int Q>
void tile_portable(const uint64_t* in, const int64_t* off, int64_t hi_off, const uint64_t* w,
                   int64_t K, int32_t* counts) {
  for (int q = 0; q < Q; ++q) {
    for (int l = 0; l < 4 * P; ++l) {
      int64_t c = 0;
      for (int64_t k = 0; k < K; ++k) {
        const uint64_t* wk = w + 2 * (q * K + k);
        c += popcount64(in[off[k] + l] ^ wk[0]) + popcount64(in[off[k] + hi_off + l] ^ wk[1]);
      }
      counts[q * kTileOW + l] = static_cast<int32_t>(c);
    }
  }
}

typedef void (*tile_fn)(const uint64_t*, const int64_t*, int64_t, const uint64_t*, int64_t,
                        int32_t*);

template <template <int, int> class Fn, int P, int... Q>
constexpr std::array<tile_fn, sizeof...(Q)> tile_row(std::integer_sequence<int, Q...>) {
  return {{&Fn<P, Q + 1>::run...}};
}

template <int P, int Q>
struct TileAvx2 {
  static void run(const uint64_t* in, const int64_t* off, int64_t hi_off, const uint64_t* w,
                  int64_t K, int32_t* counts) {
    tile_avx2<P, Q>(in, off, hi_off, w, K, counts);
  }
};

template <int P, int Q>
struct TilePortable {
  static void run(const uint64_t* in, const int64_t* off, int64_t hi_off, const uint64_t* w,
                  int64_t K, int32_t* counts) {
    tile_portable<P, Q>(in, off, hi_off, w, K, counts);
  }
};

typedef void (*tile512_fn)(const uint64_t*, const int64_t*, const uint64_t*, int64_t,
                           const TileEpilogue&);

template <int... Q>
constexpr std::array<tile512_fn, sizeof...(Q)> tile_avx512_row(
    std::integer_sequence<int, Q...>) {
  return {{&tile_avx512<Q + 1>...}};
}

// table[Q - 1]: AVX-512 micro-kernel for Q output channels (8 pixels), epilogue fused
const std::array<tile512_fn, kQ512> tile_avx512_table =
    tile_avx512_row(std::make_integer_sequence<int, kQ512>());

// table[P - 1][Q - 1]: micro-kernel for P vectors of 4 pixels and Q output channels
const std::array<tile_fn, kQ> tile_avx2_table[2] = {
    tile_row<TileAvx2, 1>(std::make_integer_sequence<int, kQ>()),
    tile_row<TileAvx2, 2>(std::make_integer_sequence<int, kQ>())};
const std::array<tile_fn, kQ> tile_portable_table[2] = {
    tile_row<TilePortable, 1>(std::make_integer_sequence<int, kQ>()),
    tile_row<TilePortable, 2>(std::make_integer_sequence<int, kQ>())};

#endif  // MXCOMPRESS_XNOR_TILES_H_
