// Register-blocked xnor-popcount micro-kernels of xnor_kernel.cc (included there once,
// inside its anonymous namespace; not a public header). See xnor_kernel.cc for the layout.
//
// Every micro-kernel computes, for the pixels l of one tile and its Q output channels q,
//   count[q][l] = sum_k popcount(in[base + off[k] + l] ^ w[k][q])
// and the epilogue (AVX-512 and portable: from registers while the counts are hot; AVX2:
// from the int32 counts of a work item, epilogue_avx2) is
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

// ---- AVX2: per-input-nibble tables, 32 output channels per vector -------------------------
// Without a vector popcount, vpshufb is a 16-entry table look-up per byte. The kernel turns the
// xor + popcount of 4 channels into one look-up by giving each input nibble a its own table,
//   T_a[i] = popcount(a xor i),  i = 0..15,
// and looking up the weight nibbles of 32 output channels in it (their 4 channels at the same
// nibble position): one vpshufb + one vpaddb count 32 channels x 4 binary MACs of one pixel.
// The 16 tables (512 bytes) stay in L1; the input is stored as one byte per 4 channels
// holding 4 a (nibble bytes, xnor_pack.h), so the table row is at tables + 8 * byte.
// A tile is P pixels x G groups of 32 output channels, 12 byte accumulators in ymm0-11. Per
// step (a tap's nibble position): per pixel one byte load and one table load, then G
// vpshufb + vpaddb with the step's G weight vectors (two in ymm12-13, the others read as
// vpshufb memory operands). Pixels are independent pointers, so a tile takes any 3 (6)
// output pixels (across row ends: no lane is wasted at 7 or 14 pixels) and any stride or
// dilation. Counts are at most 4 per step in a byte: 63 steps per chunk, then the bytes are
// widened into 16-bit totals (tile_flush_avx2).
//
// Measured on AMD Zen 4 without AVX-512 (stand-alone loop, 1 core, 3x3 C -> C, batch 1):
// 435-460 G binary MAC/s at 256 / 512 channels against 346-360 for the previous scheme
// (nibble halves of input and weights stored apart, LUT[a_lo xor w_lo] + LUT[a_hi xor w_hi]
// per byte: 2 vpxor, 2 vpshufb, 2 vpaddb per 256 binary MACs of 4 pixels, and padding lanes
// at 14 / 7 pixels). The loop is written in inline asm: GCC 12 compiled the same intrinsics
// with a register copy per accumulator (360 G) or spilled them (210-250 G). Tried before the
// previous scheme and not kept: Harley-Seal carry-save popcount (233-291 G against 277-384),
// a per-weight table over 32 pixels (padding lanes; 0.8-1.2x).
struct NibbleTables {
  alignas(64) uint8_t row[16][32];
};
constexpr NibbleTables make_nibble_tables() {
  NibbleTables t{};
  for (int a = 0; a < 16; ++a)
    for (int i = 0; i < 32; ++i) {
      const int v = a ^ (i & 15);
      t.row[a][i] = static_cast<uint8_t>((v & 1) + (v >> 1 & 1) + (v >> 2 & 1) + (v >> 3 & 1));
    }
  return t;
}
alignas(64) constexpr NibbleTables kNibbleTables = make_nibble_tables();

// Steps [0, steps) (steps >= 1) of one tile: src[p] the nibble bytes of pixel p's window
// origin, soff[s] the byte offset of step s from it, w the step-major weight rows (G * 32
// bytes per step); acc[p * G + g] (12 vectors) receives
// the byte counts of pixel p, channels 32 g .. 32 g + 31.
#define XNOR_ZERO_ACC                                                                      \
  "vpxor %%xmm0, %%xmm0, %%xmm0\n\tvpxor %%xmm1, %%xmm1, %%xmm1\n\t"                     \
  "vpxor %%xmm2, %%xmm2, %%xmm2\n\tvpxor %%xmm3, %%xmm3, %%xmm3\n\t"                     \
  "vpxor %%xmm4, %%xmm4, %%xmm4\n\tvpxor %%xmm5, %%xmm5, %%xmm5\n\t"                     \
  "vpxor %%xmm6, %%xmm6, %%xmm6\n\tvpxor %%xmm7, %%xmm7, %%xmm7\n\t"                     \
  "vpxor %%xmm8, %%xmm8, %%xmm8\n\tvpxor %%xmm9, %%xmm9, %%xmm9\n\t"                     \
  "vpxor %%xmm10, %%xmm10, %%xmm10\n\tvpxor %%xmm11, %%xmm11, %%xmm11\n\t"
// After the steps: byte counts of accumulator A (pixel p, group g) added into the 16-bit
// totals at OFF = 256 p + 64 g bytes: the even bytes (channels 0, 2, .., 30 of the group:
// vpand with 0x00ff words in ymm15) to the first 16 words, the odd bytes (vpsrlw 8) to the
// next 16 (totals_channel). No shuffle: the add and logic pipes do it, the accumulators never
// leave their registers.
#define XNOR_FLUSH_SETUP \
  "vpcmpeqw %%ymm15, %%ymm15, %%ymm15\n\tvpsrlw $8, %%ymm15, %%ymm15\n\t"
#define XNOR_FLUSH(A, OFF)                                                                 \
  "vpand %%ymm15, %%ymm" A ", %%ymm14\n\tvpsrlw $8, %%ymm" A ", %%ymm" A "\n\t"               \
  "vpaddw " OFF "(%[tot]), %%ymm14, %%ymm14\n\tvmovdqu %%ymm14, " OFF "(%[tot])\n\t"           \
  "vpaddw " OFF "+32(%[tot]), %%ymm" A ", %%ymm" A "\n\t"                                     \
  "vmovdqu %%ymm" A ", " OFF "+32(%[tot])\n\t"
// the two groups of accumulators A and B at OFF and OFF + 64 (the assembler adds the offsets)
#define XNOR_FLUSH_2(A, B, OFF) XNOR_FLUSH(A, OFF) XNOR_FLUSH(B, OFF "+64")
// 12 accumulators as 3 pixels x 4 groups (pixel p at 256 p), 6 x 2, and 6 x 1 (acc 0-5)
#define XNOR_FLUSH_3x4                                                                     \
  XNOR_FLUSH_SETUP XNOR_FLUSH_2("0", "1", "0") XNOR_FLUSH_2("2", "3", "128")                 \
  XNOR_FLUSH_2("4", "5", "256") XNOR_FLUSH_2("6", "7", "384")                                \
  XNOR_FLUSH_2("8", "9", "512") XNOR_FLUSH_2("10", "11", "640")
#define XNOR_FLUSH_6x2                                                                     \
  XNOR_FLUSH_SETUP XNOR_FLUSH_2("0", "1", "0") XNOR_FLUSH_2("2", "3", "256")                 \
  XNOR_FLUSH_2("4", "5", "512") XNOR_FLUSH_2("6", "7", "768")                                \
  XNOR_FLUSH_2("8", "9", "1024") XNOR_FLUSH_2("10", "11", "1280")
#define XNOR_FLUSH_6x1                                                                     \
  XNOR_FLUSH_SETUP XNOR_FLUSH("0", "0") XNOR_FLUSH("1", "256") XNOR_FLUSH("2", "512")         \
  XNOR_FLUSH("3", "768") XNOR_FLUSH("4", "1024") XNOR_FLUSH("5", "1280")
// pixel SRC's table row -> ymm14
#define XNOR_TABLE(SRC) \
  "movzbl (%[" SRC "], %%rax), %%r10d\n\tvmovdqa (%[tab], %%r10, 8), %%ymm14\n\t"
// acc A += T[weights in ymm W]; the same with the weights at OFF(w)
#define XNOR_ADD_REG(W, A) \
  "vpshufb %%ymm" W ", %%ymm14, %%ymm15\n\tvpaddb %%ymm15, %%ymm" A ", %%ymm" A "\n\t"
#define XNOR_ADD_MEM(OFF, A) \
  "vpshufb " OFF "(%[w]), %%ymm14, %%ymm15\n\tvpaddb %%ymm15, %%ymm" A ", %%ymm" A "\n\t"
#define XNOR_STEP_HEAD \
  "1:\n\tmovslq (%[so]), %%rax\n\tvmovdqu (%[w]), %%ymm12\n\t"
// the asm's outputs (step pointer, weight pointer, steps left) and the inputs of 6 pixels
#define XNOR_STEP_OPERANDS [so] "+r"(soff), [w] "+r"(w), [n] "+r"(steps)
#define XNOR_SIX_PIXELS                                                                    \
  [s0] "r"(src[0]), [s1] "r"(src[1]), [s2] "r"(src[2]), [s3] "r"(src[3]), [s4] "r"(src[4]), \
      [s5] "r"(src[5]), [tab] "r"(kNibbleTables.row), [tot] "r"(totals)
#define XNOR_CLOBBERS                                                                      \
  "rax", "r10", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",    \
      "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc"

// P = 3 pixels x G = 4 groups (128 channels)
__attribute__((target("avx2"))) void tile_steps_3x4(const uint8_t* const* src,
                                                    const int32_t* soff, const uint8_t* w,
                                                    int64_t steps, uint16_t* totals) {
  asm volatile(XNOR_ZERO_ACC XNOR_STEP_HEAD "vmovdqu 32(%[w]), %%ymm13\n\t"
               XNOR_TABLE("s0") XNOR_ADD_REG("12", "0") XNOR_ADD_REG("13", "1")
               XNOR_ADD_MEM("64", "2") XNOR_ADD_MEM("96", "3")
               XNOR_TABLE("s1") XNOR_ADD_REG("12", "4") XNOR_ADD_REG("13", "5")
               XNOR_ADD_MEM("64", "6") XNOR_ADD_MEM("96", "7")
               XNOR_TABLE("s2") XNOR_ADD_REG("12", "8") XNOR_ADD_REG("13", "9")
               XNOR_ADD_MEM("64", "10") XNOR_ADD_MEM("96", "11")
               "add $4, %[so]\n\tsub $-128, %[w]\n\tdec %[n]\n\tjnz 1b\n\t" XNOR_FLUSH_3x4
               : XNOR_STEP_OPERANDS
               : [s0] "r"(src[0]), [s1] "r"(src[1]), [s2] "r"(src[2]),
                 [tab] "r"(kNibbleTables.row), [tot] "r"(totals)
               : XNOR_CLOBBERS);
}

// P = 6 pixels x G = 2 groups (64 channels)
__attribute__((target("avx2"))) void tile_steps_6x2(const uint8_t* const* src,
                                                    const int32_t* soff, const uint8_t* w,
                                                    int64_t steps, uint16_t* totals) {
  asm volatile(XNOR_ZERO_ACC XNOR_STEP_HEAD "vmovdqu 32(%[w]), %%ymm13\n\t"
               XNOR_TABLE("s0") XNOR_ADD_REG("12", "0") XNOR_ADD_REG("13", "1")
               XNOR_TABLE("s1") XNOR_ADD_REG("12", "2") XNOR_ADD_REG("13", "3")
               XNOR_TABLE("s2") XNOR_ADD_REG("12", "4") XNOR_ADD_REG("13", "5")
               XNOR_TABLE("s3") XNOR_ADD_REG("12", "6") XNOR_ADD_REG("13", "7")
               XNOR_TABLE("s4") XNOR_ADD_REG("12", "8") XNOR_ADD_REG("13", "9")
               XNOR_TABLE("s5") XNOR_ADD_REG("12", "10") XNOR_ADD_REG("13", "11")
               "add $4, %[so]\n\tadd $64, %[w]\n\tdec %[n]\n\tjnz 1b\n\t" XNOR_FLUSH_6x2
               : XNOR_STEP_OPERANDS
               : XNOR_SIX_PIXELS
               : XNOR_CLOBBERS);
}

// P = 6 pixels x G = 1 group (32 channels; acc[6..11] are zero)
__attribute__((target("avx2"))) void tile_steps_6x1(const uint8_t* const* src,
                                                    const int32_t* soff, const uint8_t* w,
                                                    int64_t steps, uint16_t* totals) {
  asm volatile(XNOR_ZERO_ACC XNOR_STEP_HEAD
               XNOR_TABLE("s0") XNOR_ADD_REG("12", "0")
               XNOR_TABLE("s1") XNOR_ADD_REG("12", "1")
               XNOR_TABLE("s2") XNOR_ADD_REG("12", "2")
               XNOR_TABLE("s3") XNOR_ADD_REG("12", "3")
               XNOR_TABLE("s4") XNOR_ADD_REG("12", "4")
               XNOR_TABLE("s5") XNOR_ADD_REG("12", "5")
               "add $4, %[so]\n\tadd $32, %[w]\n\tdec %[n]\n\tjnz 1b\n\t" XNOR_FLUSH_6x1
               : XNOR_STEP_OPERANDS
               : XNOR_SIX_PIXELS
               : XNOR_CLOBBERS);
}
#undef XNOR_ZERO_ACC
#undef XNOR_FLUSH_SETUP
#undef XNOR_FLUSH
#undef XNOR_FLUSH_2
#undef XNOR_FLUSH_3x4
#undef XNOR_FLUSH_6x2
#undef XNOR_FLUSH_6x1
#undef XNOR_TABLE
#undef XNOR_ADD_REG
#undef XNOR_ADD_MEM
#undef XNOR_STEP_HEAD
#undef XNOR_CLOBBERS
#undef XNOR_STEP_OPERANDS
#undef XNOR_SIX_PIXELS

// The channel (within its group of 32) of position m of a group's 16-bit totals.
constexpr int totals_channel(int m) { return (m & 15) * 2 + (m >> 4); }

// The float epilogue of qn channels x (up to) 8 pixels of one output row from int32 counts
// in memory (channel q's 8 counts at count + q * count_stride; lanes beyond e.lanes are
// ignored): out = alpha * (full - 2 * count + corr) + bias (+ residual), or the bit-packed
// output's pixel masks.
__attribute__((target("avx2")))
void epilogue_avx2(const int32_t* count, int64_t count_stride, int64_t qn,
                   const TileEpilogue& e) {
  const __m256i full = _mm256_set1_epi32(e.full);
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(e.lanes),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int64_t q = 0; q < qn; ++q) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(count + q * count_stride));
    const __m256i fix = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(e.corr + q * e.corr_stride));
    const __m256 dot = _mm256_cvtepi32_ps(
        _mm256_add_epi32(_mm256_sub_epi32(full, _mm256_slli_epi32(c, 1)), fix));
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
void tile_portable_popcnt(const uint64_t* in, const int64_t* off, const uint64_t* w,
                          int64_t K, const TileEpilogue& e) {
  tile_scalar<Q>(in, off, w, K, e, PopcountHw());
}

template <int Q>
void tile_portable_swar(const uint64_t* in, const int64_t* off, const uint64_t* w,
                        int64_t K, const TileEpilogue& e) {
  tile_scalar<Q>(in, off, w, K, e, PopcountSwar());
}

// ---- dispatch tables ------------------------------------------------------------------------
typedef void (*tile_fn)(const uint64_t*, const int64_t*, const uint64_t*, int64_t,
                        const TileEpilogue&);
typedef void (*tile512_fn)(const uint64_t*, const int64_t*, const uint64_t*, int64_t,
                           const TileEpilogue&);

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

// [Q - 1]: portable micro-kernels (8 pixels), with and without POPCNT
const std::array<tile_fn, kQPortable> tile_popcnt_table =
    tile_popcnt_row(std::make_integer_sequence<int, kQPortable>());
const std::array<tile_fn, kQPortable> tile_swar_table =
    tile_swar_row(std::make_integer_sequence<int, kQPortable>());
// [Q - 1]: AVX-512 micro-kernel for Q output channels (8 pixels)
const std::array<tile512_fn, kQ512> tile_avx512_table =
    tile_avx512_row(std::make_integer_sequence<int, kQ512>());

#endif  // MXCOMPRESS_XNOR_TILES_H_
