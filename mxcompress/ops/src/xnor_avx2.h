// The AVX2 kernel's driver of xnor_kernel.cc (included there once, inside its anonymous
// namespace, after the micro-kernels and the Workspace; not a public header): its channel
// blocks and per-thread buffers, the weights as step-major nibble rows, the counts of a work
// item and the work-shared loop over items. The micro-kernels are in xnor_tiles.h, the
// nibble-byte input layout in xnor_pack.h.
#ifndef MXCOMPRESS_XNOR_AVX2_H_
#define MXCOMPRESS_XNOR_AVX2_H_

// ---- AVX2 kernel geometry ---------------------------------------------------------------
// Output channels in groups of 32 (one vector of byte counts), groups in blocks of 4 (the
// 3x4 micro-kernel); the last groups of a layer whose group count is not a multiple of 4
// form blocks of 2 and 1 (6x2, 6x1).
struct Avx2Block {
  int64_t g0, groups;  // first group, groups in the block (4, 2 or 1)
};

inline int64_t channel_groups(const ConvGeom& g) { return (g.O + 31) / 32; }
inline int64_t avx2_steps(const ConvGeom& g) { return g.KH * g.KW * g.C4; }

// The block of group gg.
inline Avx2Block avx2_block_of(const ConvGeom& g, int64_t gg) {
  const int64_t full = channel_groups(g) / 4 * 4, rest = channel_groups(g) - full;
  if (gg < full) return {gg / 4 * 4, 4};
  if (rest == 3 && gg == full + 2) return {full + 2, 1};
  return {full, rest == 1 ? 1 : 2};
}

std::vector<Avx2Block> avx2_blocks(const ConvGeom& g) {
  std::vector<Avx2Block> blocks;
  for (int64_t gg = 0; gg < channel_groups(g); gg += blocks.back().groups)
    blocks.push_back(avx2_block_of(g, gg));
  return blocks;
}

// Bytes of one block's weights as step-major nibble rows: row s (G * 32 bytes) at s * G * 32.
inline size_t nibble_weights_bytes(const ConvGeom& g) {
  return static_cast<size_t>(std::min<int64_t>(4, channel_groups(g)) * 32 * avx2_steps(g));
}

// Output rows per AVX2 work item (whole rows, at most 192 pixels unless one row is longer):
// the count that needs the fewest tiles over an image (3 pixels, or 6 when the layer has
// fewer than 4 groups; each item's last tile may be partial), the smallest such. At 14 x 14
// that is 3 rows (42 pixels, 14 full tiles; 2 rows would waste 2 of every 30 pixel slots), at
// 28 x 28 3 rows (84 pixels), at 56 x 56 with 64 channels 3 rows (168 pixels, 28 tiles of 6).
inline int64_t avx2_rows_per_item(const ConvGeom& g) {
  const int64_t most = std::max<int64_t>(1, std::min<int64_t>(g.OH, 192 / std::max<int64_t>(1, g.OW)));
  const int64_t P = channel_groups(g) >= 4 ? 3 : 6;
  auto tiles = [&g, P](int64_t r) {
    return g.OH / r * ((r * g.OW + P - 1) / P) + ((g.OH % r) * g.OW + P - 1) / P;
  };
  int64_t best = 1;
  for (int64_t r = 2; r <= most; ++r)
    if (tiles(r) < tiles(best)) best = r;
  return best;
}

// A thread's AVX2 buffers: the nibble rows of its current channel block (nibble_weights_bytes)
// and, for one work item of npix = rows * OW pixels, the pixels' origins,
// 16-bit totals (128 per pixel, up to 7 padding pixels: a last tile, the 8-pixel transpose),
// int32 counts per channel (stride npix + 8: the epilogue reads, the transpose writes 8
// lanes).
struct Avx2Scratch {
  uint8_t* wnib;
  int64_t* base;
  uint16_t* totals;
  int32_t* count;
  int64_t stride;
};

inline int64_t avx2_item_pixels(const ConvGeom& g) { return avx2_rows_per_item(g) * g.OW; }

inline size_t avx2_scratch_bytes(const ConvGeom& g) {
  const int64_t npix = avx2_item_pixels(g);
  return align64(nibble_weights_bytes(g)) + align64(sizeof(int64_t) * npix) +
         align64(sizeof(uint16_t) * 128 * (npix + 8)) +
         align64(sizeof(int32_t) * 128 * (npix + 8));
}

Avx2Scratch carve_avx2_scratch(const ConvGeom& g, char* p) {
  const int64_t npix = avx2_item_pixels(g);
  Avx2Scratch sc;
  sc.wnib = reinterpret_cast<uint8_t*>(p);
  p += align64(nibble_weights_bytes(g));
  sc.base = reinterpret_cast<int64_t*>(p);
  p += align64(sizeof(int64_t) * npix);
  sc.totals = reinterpret_cast<uint16_t*>(p);
  p += align64(sizeof(uint16_t) * 128 * (npix + 8));
  sc.count = reinterpret_cast<int32_t*>(p);
  sc.stride = npix + 8;
  return sc;
}

// The AVX2 kernel's int32 step offsets hold any layer whose padded input rows of one window
// span less than 2 GiB of nibble bytes; larger ones use the portable kernel.
inline bool avx2_offsets_fit(const ConvGeom& g) {
  return ((g.KH - 1) * g.DH * g.Wp + (g.KW - 1) * g.DW + 1) * g.C4 < (int64_t{1} << 31);
}

// ---- AVX2 kernel: weight rows, work items ----------------------------------------------

// Byte-transposes two 16 x 16 byte matrices at once (one per 128-bit lane): y[k] holds row k,
// afterwards y[b] holds column b. Four rounds of interleaving rows k and k + 8.
__attribute__((target("avx2"))) inline void transpose16x16_bytes(__m256i* y) {
  for (int round = 0; round < 4; ++round) {
    __m256i t[16];
    for (int k = 0; k < 8; ++k) {
      t[2 * k] = _mm256_unpacklo_epi8(y[k], y[k + 8]);
      t[2 * k + 1] = _mm256_unpackhi_epi8(y[k], y[k + 8]);
    }
    for (int k = 0; k < 16; ++k) y[k] = t[k];
  }
}

// Bytes [b0, b0 + 16) of tap t of output channel o (zero beyond Cb or for o >= O).
__attribute__((target("avx2"))) inline __m128i tap_bytes16(const ConvGeom& g, const uint8_t* w,
                                                           int64_t o, int64_t t, int64_t b0) {
  const int64_t avail = std::min<int64_t>(16, g.Cb - b0);
  if (o >= g.O || avail <= 0) return _mm_setzero_si128();
  const uint8_t* src = w + (o * g.KH * g.KW + t) * g.Cb + b0;
  if (avail == 16) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  alignas(16) uint8_t part[16] = {};
  std::memcpy(part, src, static_cast<size_t>(avail));
  return _mm_load_si128(reinterpret_cast<const __m128i*>(part));
}

// The weights of group gg (output channels 32 gg .. 32 gg + 31) at tap t as the AVX2
// kernel's step rows of its block: byte i of row s = t * C4 + j is nibble j (channels
// 4 j .. 4 j + 3) of channel 32 gg + i, 0..15, the index vpshufb looks up in the input
// nibble's table. 32 channels x 16 bytes are transposed at a time, then split into low and
// high nibbles (rows 2 b and 2 b + 1).
__attribute__((target("avx2")))
void nibble_weights_avx2(const ConvGeom& g, const uint8_t* w, int64_t gg, int64_t t,
                         uint8_t* wnib) {
  const Avx2Block blk = avx2_block_of(g, gg);
  const int64_t row = blk.groups * 32;
  uint8_t* dst = wnib + (gg - blk.g0) * 32 + t * g.C4 * row;
  const __m256i m = _mm256_set1_epi8(0x0f);
  const int64_t stride = g.KH * g.KW * g.Cb;  // from one output channel's tap to the next's
  const uint8_t* src = w + (32 * gg * g.KH * g.KW + t) * g.Cb;
  const bool all_channels = 32 * gg + 32 <= g.O;
  for (int64_t b0 = 0; b0 < 8 * g.Wc; b0 += 16) {
    __m256i y[16];
    if (all_channels && b0 + 16 <= g.Cb) {  // the common case: plain loads
      for (int k = 0; k < 16; ++k)
        y[k] = _mm256_loadu2_m128i(
            reinterpret_cast<const __m128i*>(src + (16 + k) * stride + b0),
            reinterpret_cast<const __m128i*>(src + k * stride + b0));
    } else {
      for (int k = 0; k < 16; ++k)
        y[k] = _mm256_inserti128_si256(
            _mm256_castsi128_si256(tap_bytes16(g, w, 32 * gg + k, t, b0)),
            tap_bytes16(g, w, 32 * gg + 16 + k, t, b0), 1);
    }
    transpose16x16_bytes(y);
    for (int64_t b = 0; b < 16 && b0 + b < 8 * g.Wc; ++b) {
      const int64_t j = 2 * (b0 + b);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j * row), _mm256_and_si256(y[b], m));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + (j + 1) * row),
                          _mm256_and_si256(_mm256_srli_epi16(y[b], 4), m));
    }
  }
}

// Adds (or, when `first`, stores) the 16-bit totals of pixels i .. i + 7, positions m0 ..
// m0 + 15 of one group's totals, into the int32 counts: an 8 x 16 transpose (two 8 x 8 of
// 16-bit words, one per 128-bit lane: pixel rows -> channel rows), then widened.
__attribute__((target("avx2")))
inline void totals_to_counts(const Avx2Scratch& sc, int64_t i, int m0, bool first) {
  __m256i r[8];
  for (int k = 0; k < 8; ++k)
    r[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc.totals + (i + k) * 128 + m0));
  __m256i t[8], u[8];
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm256_unpacklo_epi16(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_epi16(r[2 * k], r[2 * k + 1]);
  }
  for (int h = 0; h < 2; ++h)  // pixels 0-3 (h = 0) and 4-7
    for (int k = 0; k < 2; ++k) {
      u[4 * h + 2 * k] = _mm256_unpacklo_epi32(t[4 * h + k], t[4 * h + k + 2]);
      u[4 * h + 2 * k + 1] = _mm256_unpackhi_epi32(t[4 * h + k], t[4 * h + k + 2]);
    }
  for (int k = 0; k < 4; ++k) {
    const __m256i cols[2] = {_mm256_unpacklo_epi64(u[k], u[k + 4]),
                             _mm256_unpackhi_epi64(u[k], u[k + 4])};
    for (int c = 0; c < 2; ++c)
      for (int lane = 0; lane < 2; ++lane) {
        const int m = m0 + 8 * lane + 2 * k + c;  // column 2 k + c of lane `lane`
        const __m128i v = lane == 0 ? _mm256_castsi256_si128(cols[c])
                                    : _mm256_extracti128_si256(cols[c], 1);
        __m256i* dst = reinterpret_cast<__m256i*>(
            sc.count + ((m & ~31) | totals_channel(m & 31)) * sc.stride + i);
        const __m256i wide = _mm256_cvtepu16_epi32(v);
        _mm256_storeu_si256(dst, first ? wide : _mm256_add_epi32(_mm256_loadu_si256(dst), wide));
      }
  }
}

typedef void (*tile_steps_fn)(const uint8_t* const*, const int32_t*, const uint8_t*, int64_t,
                              uint16_t*);

// The counts of one work item: npix output pixels (origins base[i] in the nibble bytes) x
// the G groups of one block (weight rows wblk), into sc.count[q * sc.stride + i]. Chunks of
// 63 steps over all the item's tiles (the chunk's weight rows, 63 * G * 32 bytes, stay in
// L1), byte counts widened into 16-bit totals after each, the totals added into the counts
// every 256 chunks and at the end.
template <int P, int G>
__attribute__((target("avx2")))
void count_item_avx2(const ConvGeom& g, const uint8_t* nib, int64_t npix, const int32_t* soff,
                     const uint8_t* wblk, tile_steps_fn steps_fn, const Avx2Scratch& sc) {
  const int64_t S = avx2_steps(g), tiles = (npix + P - 1) / P;
  const size_t totals_bytes =
      sizeof(uint16_t) * 128 * static_cast<size_t>(std::max(tiles * P, (npix + 7) / 8 * 8));
  std::memset(sc.totals, 0, totals_bytes);
  bool first = true;
  for (int64_t s0 = 0, chunk = 0; s0 < S; s0 += kChunkSteps, ++chunk) {
    const int64_t steps = std::min(kChunkSteps, S - s0);
    for (int64_t t = 0; t < tiles; ++t) {
      const uint8_t* src[P];
      for (int p = 0; p < P; ++p) src[p] = nib + sc.base[std::min(t * P + p, npix - 1)];
      steps_fn(src, soff + s0, wblk + s0 * G * 32, steps, sc.totals + t * P * 128);
    }
    const bool last = s0 + steps >= S;
    if (!last && (chunk + 1) % kChunksPerTotal != 0) continue;
    for (int64_t i = 0; i < npix; i += 8)
      for (int m0 = 0; m0 < G * 32; m0 += 16) totals_to_counts(sc, i, m0, first);
    first = false;
    if (!last) std::memset(sc.totals, 0, totals_bytes);
  }
}

// The AVX2 kernel's tiles and epilogue of the (block, image, item of output rows) items that
// member m takes (its own share, then what is left of the others'); no wait.
__attribute__((target("avx2")))
void tiles_avx2(const ConvGeom& g, const Workspace& ws, const std::vector<Avx2Block>& blocks,
                const uint8_t* w, const float* alpha, const float* bias, float* out, const ConvIO& io,
                char* thread_buffer, const Member& m) {
  const Avx2Scratch sc = carve_avx2_scratch(g, thread_buffer);
  const int64_t rows = avx2_rows_per_item(g), items = (g.OH + rows - 1) / rows;
  const int64_t nblocks = static_cast<int64_t>(blocks.size());
  const uint8_t* nib = reinterpret_cast<const uint8_t*>(ws.packed);
  int64_t block_for = -1;  // the block whose nibble rows sc.wnib holds
  for_share(m, nblocks, g.N, items, [&](int64_t b, int64_t n, int64_t it) {
    const Avx2Block blk = blocks[b];
    if (block_for != b) {  // tap-major: the block's groups fill the same rows in turn
      for (int64_t t = 0; t < g.KH * g.KW; ++t)
        for (int64_t gg = blk.g0; gg < blk.g0 + blk.groups; ++gg)
          nibble_weights_avx2(g, w, gg, t, sc.wnib);
      block_for = b;
    }
    const int64_t o0 = blk.g0 * 32, qn = std::min(blk.groups * 32, g.O - o0);
    const int64_t oh0 = it * rows, oh1 = std::min(g.OH, oh0 + rows);
    const int64_t npix = (oh1 - oh0) * g.OW;
    for (int64_t i = 0; i < npix; ++i) {
      const int64_t oh = oh0 + i / g.OW, ow = i % g.OW;
      sc.base[i] = ((n * g.Hp + oh * g.SH) * g.Wp + ow * g.SW) * g.C4;
    }
    const uint8_t* wblk = sc.wnib;
    if (blk.groups == 4)
      count_item_avx2<3, 4>(g, nib, npix, ws.soff, wblk, tile_steps_3x4, sc);
    else if (blk.groups == 2)
      count_item_avx2<6, 2>(g, nib, npix, ws.soff, wblk, tile_steps_6x2, sc);
    else
      count_item_avx2<6, 1>(g, nib, npix, ws.soff, wblk, tile_steps_6x1, sc);
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow0 = 0; ow0 < g.OW; ow0 += kTileOW)
        epilogue_avx2(sc.count + (oh - oh0) * g.OW + ow0, sc.stride, qn,
                      tile_epilogue(g, ws, io, alpha, bias, out, n, o0, oh, ow0));
  });
}

#endif  // MXCOMPRESS_XNOR_AVX2_H_
