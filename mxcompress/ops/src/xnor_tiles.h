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

// table[P - 1][Q - 1]: micro-kernel for P vectors of 4 pixels and Q output channels
const std::array<tile_fn, kQ> tile_avx2_table[2] = {
    tile_row<TileAvx2, 1>(std::make_integer_sequence<int, kQ>()),
    tile_row<TileAvx2, 2>(std::make_integer_sequence<int, kQ>())};
const std::array<tile_fn, kQ> tile_portable_table[2] = {
    tile_row<TilePortable, 1>(std::make_integer_sequence<int, kQ>()),
    tile_row<TilePortable, 2>(std::make_integer_sequence<int, kQ>())};

#endif  // MXCOMPRESS_XNOR_TILES_H_
