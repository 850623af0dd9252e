// Activation packing of xnor_kernel.cc (included there once, inside its anonymous namespace,
// after the workspace helpers; not a public header): float NCHW rows -> the bit-packed
// layouts the micro-kernels of xnor_tiles.h read; already bit-packed activations (N, H, W,
// Cb bytes) -> the same layouts; and the tiles' output masks -> a bit-packed output. See
// xnor_kernel.cc for the layouts.
#ifndef MXCOMPRESS_XNOR_PACK_H_
#define MXCOMPRESS_XNOR_PACK_H_

// ---- activation packing -------------------------------------------------------------

// The binarisation of the packed input: channel c's value x gives the bit of -1 when
// x * scale[c] < threshold[c] (without thresholds: x < 0). scale = +1 / -1 with a threshold
// is an inference BatchNorm followed by sign folded into the packing (see xnor_kernel.h).
struct InputSign {
  const float* scales;
  const float* thresholds;
  float scale(int64_t c) const { return scales ? scales[c] : 1.0f; }
  float threshold(int64_t c) const { return thresholds ? thresholds[c] : 0.0f; }
};

// Stores the packed word of column w (whole words, the portable and AVX-512 layout).
void store_word(const ConvGeom& g, uint64_t* row, int64_t w, uint64_t word) {
  const int64_t wp = w + g.PW;
  row[(wp % g.SW) * g.Lp + wp / g.SW] = word;
}

// The AVX2 kernel's layout (nibble bytes, see xnor_kernel.cc): the packed word cw of input
// pixel (h, w) of image n becomes 16 bytes, byte 2 b = 4 * (byte b & 0x0f) and byte 2 b + 1
// = 4 * (byte b >> 4), i.e. one byte per 4 channels holding 4 times their nibble (the byte
// offset of the nibble's table row / 8).
__attribute__((target("avx2")))
inline void store_nibbles(const ConvGeom& g, uint8_t* nib, int64_t n, int64_t h, int64_t w,
                          int64_t cw, uint64_t word) {
  const __m128i v = _mm_cvtsi64_si128(static_cast<long long>(word));
  const __m128i m = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
  uint8_t* dst = nib + ((n * g.Hp + h + g.PH) * g.Wp + w + g.PW) * g.C4 + cw * 16;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_slli_epi16(_mm_unpacklo_epi8(lo, hi), 2));
}

// Packs row h of image n, channel word cw, as whole words (the portable kernel's layout),
// 16 pixels at a time: channel c sets bit c % 32 of the 32-bit accumulator half c / 32 of
// each pixel (plain loops over 32-bit lanes, which compilers vectorise with SSE2), then the
// halves are joined into words.
void pack_row_portable(const ConvGeom& g, const float* x, const InputSign& in,
                       uint64_t* packed, int64_t n, int64_t h, int64_t cw) {
  constexpr int kChunk = 16;
  uint64_t* row = packed_row(g, packed, n, h + g.PH, cw);
  const int64_t c0 = cw * 64, channels = std::min<int64_t>(64, g.C - c0);
  const int64_t plane = g.H * g.W;
  const float* base = x + ((n * g.C + c0) * g.H + h) * g.W;
  for (int64_t w0 = 0; w0 < g.W; w0 += kChunk) {
    const int npix = static_cast<int>(std::min<int64_t>(kChunk, g.W - w0));
    uint32_t acc[2][kChunk] = {};
    for (int half = 0; half < 2; ++half) {
      uint32_t* dst = acc[half];
      for (int64_t c = 32 * half; c < std::min<int64_t>(channels, 32 * half + 32); ++c) {
        const float* src = base + c * plane + w0;
        const int bit = static_cast<int>(c & 31);
        const float s = in.scale(c0 + c), t = in.threshold(c0 + c);
        if (npix == kChunk) {
          for (int l = 0; l < kChunk; ++l) dst[l] |= static_cast<uint32_t>(src[l] * s < t) << bit;
        } else {
          for (int l = 0; l < npix; ++l) dst[l] |= static_cast<uint32_t>(src[l] * s < t) << bit;
        }
      }
    }
    for (int l = 0; l < npix; ++l)
      store_word(g, row, w0 + l, acc[0][l] | static_cast<uint64_t>(acc[1][l]) << 32);
  }
}

// Packing with AVX2 (for the AVX2 kernel's nibble-byte layout), up to 8 * NB pixels of a row
// at once: the sign masks of 8 pixels come from one compare (vcmpps) per channel; channel c
// sets bit c % 32 of the 32-bit lanes of acc[c / 32][b] (and + or), so the 2 * NB
// accumulators stay in registers while the channel planes are read. The two 32-bit halves
// are then interleaved into the 8 words of each block.
template <int NB>
__attribute__((target("avx2")))
void pack_chunk_avx2(const float* src, const InputSign& in, int64_t c0, int64_t plane,
                     int64_t channels, int64_t npix, uint64_t* words) {
  __m256i acc[2][NB];
  __m256i load_mask[NB];
  for (int b = 0; b < NB; ++b) {
    acc[0][b] = acc[1][b] = _mm256_setzero_si256();
    const int left = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(8, npix - 8 * b)));
    load_mask[b] = _mm256_cmpgt_epi32(_mm256_set1_epi32(left),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  const bool full = npix == 8 * NB;
  for (int half = 0; half < 2; ++half) {
    __m256i bit = _mm256_set1_epi32(1);
    const int64_t c_end = std::min<int64_t>(channels, 32 * (half + 1));
    for (int64_t c = 32 * half; c < c_end; ++c) {
      const float* p = src + c * plane;
      const __m256 s = _mm256_set1_ps(in.scale(c0 + c)), t = _mm256_set1_ps(in.threshold(c0 + c));
      for (int b = 0; b < NB; ++b) {
        const __m256 v = full ? _mm256_loadu_ps(p + 8 * b)
                              : _mm256_maskload_ps(p + 8 * b, load_mask[b]);
        const __m256i neg =
            _mm256_castps_si256(_mm256_cmp_ps(_mm256_mul_ps(v, s), t, _CMP_LT_OQ));
        acc[half][b] = _mm256_or_si256(acc[half][b], _mm256_and_si256(neg, bit));
      }
      bit = _mm256_slli_epi32(bit, 1);
    }
  }
  for (int b = 0; b < NB; ++b) {
    const __m256i lo = _mm256_unpacklo_epi32(acc[0][b], acc[1][b]);  // words 0 1 | 4 5
    const __m256i hi = _mm256_unpackhi_epi32(acc[0][b], acc[1][b]);  // words 2 3 | 6 7
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(words + 8 * b),
                        _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(words + 8 * b + 4),
                        _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}

// Packs rows [h0, h1) of image n, channel word cw, 32 pixels of a row per chunk, into the
// nibble bytes `nib` (store_nibbles).
__attribute__((target("avx2")))
void pack_rows_avx2(const ConvGeom& g, const float* x, const InputSign& in, uint8_t* nib,
                    int64_t n, int64_t h0, int64_t h1, int64_t cw) {
  const int64_t c0 = cw * 64, channels = std::min<int64_t>(64, g.C - c0);
  const int64_t plane = g.H * g.W;
  alignas(32) uint64_t words[32];
  for (int64_t h = h0; h < h1; ++h) {
    const float* src = x + ((n * g.C + c0) * g.H + h) * g.W;
    for (int64_t w0 = 0; w0 < g.W; w0 += 32) {
      const int64_t npix = std::min<int64_t>(32, g.W - w0);
      switch ((npix + 7) / 8) {
        case 1: pack_chunk_avx2<1>(src + w0, in, c0, plane, channels, npix, words); break;
        case 2: pack_chunk_avx2<2>(src + w0, in, c0, plane, channels, npix, words); break;
        case 3: pack_chunk_avx2<3>(src + w0, in, c0, plane, channels, npix, words); break;
        default: pack_chunk_avx2<4>(src + w0, in, c0, plane, channels, npix, words); break;
      }
      for (int64_t l = 0; l < npix; ++l) store_nibbles(g, nib, n, h, w0 + l, cw, words[l]);
    }
  }
}

// Whole-word packing with AVX-512 (the AVX-512 kernel's layout): for up to 64 pixels of a
// row at once, the sign masks of 16 pixels come from one compare (vcmpps -> k register)
// and set channel c's bit in 8 pixel words per masked OR; the 8 accumulators stay in
// registers while the 64 channel planes are read row by row.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positive (masked load)
template <int NB>
__attribute__((target("avx512f,avx512vl")))
void pack_chunk_avx512(const ConvGeom& g, const float* src, const InputSign& in, int64_t c0,
                       int64_t plane, int64_t channels, int64_t npix, uint64_t* dst) {
  __m512i acc[2 * NB];
  for (int b = 0; b < 2 * NB; ++b) acc[b] = _mm512_setzero_si512();
  __mmask16 load_mask[NB];
  for (int b = 0; b < NB; ++b) {
    const int64_t left = std::max<int64_t>(0, std::min<int64_t>(16, npix - 16 * b));
    load_mask[b] = static_cast<__mmask16>((1u << left) - 1);
  }
  __m512i bit = _mm512_set1_epi64(1);
  for (int64_t c = 0; c < channels; ++c, src += plane) {
    const __m512 s = _mm512_set1_ps(in.scale(c0 + c)), t = _mm512_set1_ps(in.threshold(c0 + c));
    for (int b = 0; b < NB; ++b) {
      const __m512 v = _mm512_maskz_loadu_ps(load_mask[b], src + 16 * b);
      const __mmask16 neg = _mm512_cmp_ps_mask(_mm512_mul_ps(v, s), t, _CMP_LT_OQ);
      acc[2 * b] = _mm512_mask_or_epi64(acc[2 * b], static_cast<__mmask8>(neg), acc[2 * b], bit);
      acc[2 * b + 1] = _mm512_mask_or_epi64(acc[2 * b + 1], static_cast<__mmask8>(neg >> 8),
                                            acc[2 * b + 1], bit);
    }
    bit = _mm512_slli_epi64(bit, 1);
  }
  for (int b = 0; b < 2 * NB; ++b) {
    const int64_t left = std::max<int64_t>(0, std::min<int64_t>(8, npix - 8 * b));
    _mm512_mask_storeu_epi64(dst + 8 * b, static_cast<__mmask8>((1u << left) - 1), acc[b]);
  }
}
#pragma GCC diagnostic pop

// Packs rows [h0, h1) of image n, channel word cw, as whole words (AVX-512 kernel layout).
__attribute__((target("avx512f,avx512vl")))
void pack_rows_avx512(const ConvGeom& g, const float* x, const InputSign& in, uint64_t* packed,
                      int64_t n, int64_t h0, int64_t h1, int64_t cw) {
  const int64_t c0 = cw * 64, channels = std::min<int64_t>(64, g.C - c0);
  const int64_t plane = g.H * g.W;
  alignas(64) uint64_t words[64];
  for (int64_t h = h0; h < h1; ++h) {
    uint64_t* row = packed_row(g, packed, n, h + g.PH, cw);
    const float* src = x + ((n * g.C + c0) * g.H + h) * g.W;
    for (int64_t w0 = 0; w0 < g.W; w0 += 64) {
      const int64_t npix = std::min<int64_t>(64, g.W - w0);
      // stride 1: straight into the packed row; otherwise through words[] to each phase
      uint64_t* dst = g.SW == 1 ? row + g.PW + w0 : words;
      switch ((npix + 15) / 16) {
        case 1: pack_chunk_avx512<1>(g, src + w0, in, c0, plane, channels, npix, dst); break;
        case 2: pack_chunk_avx512<2>(g, src + w0, in, c0, plane, channels, npix, dst); break;
        case 3: pack_chunk_avx512<3>(g, src + w0, in, c0, plane, channels, npix, dst); break;
        default: pack_chunk_avx512<4>(g, src + w0, in, c0, plane, channels, npix, dst); break;
      }
      if (g.SW != 1)
        for (int64_t l = 0; l < npix; ++l) store_word(g, row, w0 + l, words[l]);
    }
  }
}

// ---- bit-packed activations in and out (shared scalar code, every kernel) -------------

// Reads row h of image n, channel word cw, of bit-packed activations xb (N, H, W, Cb bytes
// per pixel, the weights' tap layout) and hands each pixel's word to store(w, word). Byte b
// of a pixel's word cw is bits 8 b .. 8 b + 7 (little-endian, as load_tap_word reads the
// weights); channel bits beyond C are cleared, so whatever a producer left there never
// counts.
template <typename Store>
__attribute__((always_inline)) inline void read_packed_row(const ConvGeom& g, const uint8_t* xb,
                                                           int64_t n, int64_t h, int64_t cw,
                                                           Store store) {
  const int64_t nb = std::min<int64_t>(8, g.Cb - cw * 8);
  const int64_t channels = std::min<int64_t>(64, g.C - cw * 64);
  const uint64_t keep = channels == 64 ? ~0ULL : (1ULL << channels) - 1;
  const uint8_t* src = xb + (n * g.H + h) * g.W * g.Cb + cw * 8;
  for (int64_t w = 0; w < g.W; ++w, src += g.Cb) {
    uint64_t word = 0;
    if (nb == 8) {
      std::memcpy(&word, src, 8);
    } else {
      for (int64_t b = 0; b < nb; ++b) word |= static_cast<uint64_t>(src[b]) << (8 * b);
    }
    store(w, word & keep);
  }
}

// ... into the whole-word layout (portable and AVX-512 kernels)
void copy_packed_row(const ConvGeom& g, const uint8_t* xb, uint64_t* packed, int64_t n,
                     int64_t h, int64_t cw) {
  uint64_t* row = packed_row(g, packed, n, h + g.PH, cw);
  read_packed_row(g, xb, n, h, cw, [&](int64_t w, uint64_t word) { store_word(g, row, w, word); });
}

// ... into the nibble bytes (AVX2 kernel)
__attribute__((target("avx2")))
void copy_packed_row_nibbles(const ConvGeom& g, const uint8_t* xb, uint8_t* nib, int64_t n,
                             int64_t h, int64_t cw) {
  read_packed_row(g, xb, n, h, cw,
                  [&](int64_t w, uint64_t word) { store_nibbles(g, nib, n, h, w, cw, word); });
}

// Transposes an 8x8 bit matrix held in a word, byte r = row r, bit c of a byte = column c:
// afterwards byte c holds column c (bit r = old bit c of byte r). Three rounds of
// delta swaps (Hacker's Delight, 7-3 "transpose8").
inline uint64_t transpose8x8(uint64_t x) {
  uint64_t t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAULL;
  x ^= t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCULL;
  x ^= t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ULL;
  x ^= t ^ (t << 28);
  return x;
}

// Bit-packed output row oh of image n from the tiles' masks: masks[((n OH + oh) OWt + t) O + o]
// is the mask of output channel o over the 8 pixels of tile t (bit l = pixel 8 t + l), and
// the output (N, OH, OW, Ob) wants, per pixel, the channels' bits.
//
// Scalar form (the portable kernel): eight channels' masks of a tile are an 8x8 bit matrix
// (byte = channel, bit = pixel); its transpose has one byte per pixel with the channels' bits,
// i.e. byte c8 of the pixels' packed outputs. Channels beyond O read as 0, so the unused
// high bits of the last byte are 0. Bytes [c8_begin, Ob) of the tile's pixels.
void packed_output_bytes(const ConvGeom& g, const uint8_t* m, uint8_t* px, int64_t lanes,
                         int64_t c8_begin) {
  for (int64_t c8 = c8_begin; c8 < g.Ob; ++c8) {
    const int64_t nc = std::min<int64_t>(8, g.O - 8 * c8);
    uint64_t x = 0;
    if (nc == 8) {
      std::memcpy(&x, m + 8 * c8, 8);
    } else {
      for (int64_t c = 0; c < nc; ++c) x |= static_cast<uint64_t>(m[8 * c8 + c]) << (8 * c);
    }
    x = transpose8x8(x);
    for (int64_t l = 0; l < lanes; ++l) px[l * g.Ob + c8] = static_cast<uint8_t>(x >> (8 * l));
  }
}

void packed_output_row(const ConvGeom& g, const uint8_t* masks, uint8_t* out, int64_t n,
                       int64_t oh) {
  const int64_t tiles = g.OWr / 8;
  uint8_t* row = out + (n * g.OH + oh) * g.OW * g.Ob;
  for (int64_t t = 0; t < tiles; ++t)
    packed_output_bytes(g, masks + ((n * g.OH + oh) * tiles + t) * g.O, row + 8 * t * g.Ob,
                        std::min<int64_t>(8, g.OW - 8 * t), 0);
}

// AVX2 form (the AVX2 and AVX-512 kernels; every AVX-512 CPU has AVX2): 32 channels' masks
// in a vector, pixel l's 32 bits are bit l of each byte: shifted to bit 7 (16-bit shifts
// keep every byte's own bit there) and gathered by vpmovmskb, whose bit j is channel j's:
// 4 output bytes per instruction pair. The channels beyond the last multiple of 32 take the
// scalar form.
__attribute__((target("avx2")))
void packed_output_row_avx2(const ConvGeom& g, const uint8_t* masks, uint8_t* out, int64_t n,
                            int64_t oh) {
  const int64_t tiles = g.OWr / 8, groups = g.O / 32;
  uint8_t* row = out + (n * g.OH + oh) * g.OW * g.Ob;
  for (int64_t t = 0; t < tiles; ++t) {
    const uint8_t* m = masks + ((n * g.OH + oh) * tiles + t) * g.O;
    uint8_t* px = row + 8 * t * g.Ob;
    const int64_t lanes = std::min<int64_t>(8, g.OW - 8 * t);
    for (int64_t k = 0; k < groups; ++k) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + 32 * k));
      for (int64_t l = 7; l >= 0; --l) {  // bit 7 = pixel 7, then one shift per pixel
        if (l < lanes) {
          const uint32_t bits = static_cast<uint32_t>(_mm256_movemask_epi8(v));
          std::memcpy(px + l * g.Ob + 4 * k, &bits, 4);
        }
        v = _mm256_slli_epi16(v, 1);
      }
    }
    packed_output_bytes(g, m, px, lanes, 4 * groups);
  }
}

#endif  // MXCOMPRESS_XNOR_PACK_H_
