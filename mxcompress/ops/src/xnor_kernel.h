// Bit-packed xnor-popcount 2-D convolution kernel (CPU).
//
// Encoding (the project-wide sign rule): a value v is binarised to +1 if v >= 0 and -1 if
// v < 0 (NaN counts as +1); the bit stored is 1 for -1 and 0 for +1. Weights are stored
// with 1 bit each: channel c of a tap is bit (c % 8) of byte c / 8 of the tap's
// Cb = ceil(C / 8) bytes (the unused high bits of the last byte are 0). Inside, channels
// are handled as little-endian 64-bit words (bit c % 64 of word c / 64), the last word of
// a tap zero-extended when C is not a multiple of 64.
//
// For +-1 vectors a, w of length C:  a . w = C - 2 * popcount(bits(a) xor bits(w)).
// Padded channel bits are 0 in both operands, so they never add to the popcount.
//
// Spatial zero padding (what a float Convolution on +-1 inputs does) makes the
// out-of-image taps contribute 0. The packed input keeps zero bits there (i.e. +1), so
// those taps add popcount(w_tap) to the raw count; the epilogue removes it:
//   out = alpha * (C * n_valid - 2 * (raw - sum_{invalid taps} popcount(w_tap))) + bias.
//
// Bit-packed activations between binary layers (ConvIO): the input may come already
// binarised in the weights' tap layout per pixel, (N, H, W, Cb) bytes, and is then only
// copied into the kernel's word layout (no float pass); the output may leave binarised the
// same way, (N, OH, OW, Ob) bytes, Ob = ceil(O / 8): each float result y is compared in the
// epilogue, bit 1 where y * out_scale[o] < out_threshold[o] (the rule a following conv with
// input thresholds applies to a float input, same float operations), so conv -> conv chains
// never write or read float activations and equal the float chain bit for bit.
#ifndef MXCOMPRESS_XNOR_KERNEL_H_
#define MXCOMPRESS_XNOR_KERNEL_H_

#include <cstddef>
#include <cstdint>

namespace xnor {

struct ConvGeom {
  int64_t N, C, H, W;       // input (NCHW)
  int64_t O, KH, KW;        // filters
  int64_t SH, SW, PH, PW, DH, DW;
  int64_t OH, OW;           // output spatial size
  int64_t OWr;              // OW rounded up to the 8-pixel tile
  int64_t Wc;               // 64-bit words per tap = ceil(C / 64)
  int64_t Cb;               // bytes per tap of the packed weights = ceil(C / 8)
  int64_t Hp, Lp;           // packed input: rows (H + 2 PH) and words per stride phase row
  int64_t Ob;               // bytes per pixel of a bit-packed output = ceil(O / 8)
  int64_t Wp;               // padded input width W + 2 PW
  int64_t C4;               // AVX2 nibble bytes per input pixel = 16 * Wc (one per 4 channels)
};

// Fill the derived fields (OH, OW, OWr, Wc, Cb, Hp, Lp, Ob, Wp, C4) from the others.
void finish_geometry(ConvGeom* g);

// Sizes of the workspace pieces, in bytes.
size_t packed_input_bytes(const ConvGeom& g);   // packed input (either kernel layout)
size_t corr_bytes(const ConvGeom& g);           // border correction table
int64_t max_row_classes(const ConvGeom& g);
// Per-channel pixel masks of a bit-packed output (one byte per 8 output pixels of a row and
// output channel), written by the tiles and transposed into the output at the end.
size_t output_mask_bytes(const ConvGeom& g);
// The whole workspace; `packed_output`: with the output masks (ConvIO::packed_out).
size_t workspace_bytes(const ConvGeom& g, bool packed_output = false);
// Private buffer per thread of the team (the weights of one channel block, or the AVX2 kernel's
// counts of one work item); the workspace holds omp_get_max_threads() of them.
size_t thread_buffer_bytes(const ConvGeom& g);

// Kernel selection: 0 = auto (the fastest the CPU runs), 1 = portable (64-bit words, POPCNT
// when the CPU has it), 2 = AVX2 (vpshufb table popcount, needs AVX2 and POPCNT), 3 = AVX-512
// (VPOPCNTQ, needs AVX512F, AVX512VL, AVX512BW and AVX512_VPOPCNTDQ).
// The environment variable MXCOMPRESS_XNOR_KERNEL=auto|portable|avx2|avx512 overrides
// `choice`; a kernel the CPU lacks falls back to the next one down.
enum Kernel { kAuto = 0, kPortable = 1, kAvx2 = 2, kAvx512 = 3 };
int resolve_kernel(int choice);
bool cpu_has_avx2_popcnt();
bool cpu_has_avx512_vpopcnt();
// Whether the portable kernel uses the POPCNT instruction: when the CPU has it, unless
// MXCOMPRESS_XNOR_POPCNT=0 (then a SWAR popcount, as on CPUs without it).
bool portable_uses_popcnt();

// Checks the padding bits of the packed weights; returns false if any bit beyond C is set.
bool weight_padding_ok(const ConvGeom& g, const uint8_t* w);

// The optional inputs and outputs of conv_forward (all null: the plain form). Bit-packed
// activations use the weights' tap layout per pixel: (N, H, W, ceil(C / 8)) bytes, channel c
// bit (c % 8) of byte c / 8, 1 = -1, the unused high bits of the last byte 0.
struct ConvIO {
  // b(x) = -1 where x * in_scale[c] < in_threshold[c], else +1 (NaN: +1); with both null,
  // in_scale = 1 and in_threshold = 0, i.e. b = sign. An inference BatchNorm
  // y = gamma (x - mean) / sqrt(var + eps) + beta followed by sign folds into them: with
  // s = sqrt(var + eps), sign(y) = -1 iff x < mean - beta s / gamma (gamma > 0), iff
  // -x < -(mean - beta s / gamma) (gamma < 0); gamma = 0 gives the constant sign(beta)
  // (threshold +inf: always -1 for finite x, or -inf: never). (C,) each.
  const float* in_scale = nullptr;
  const float* in_threshold = nullptr;
  // The input already binarised and bit-packed, (N, H, W, Cb) bytes: used instead of x (which
  // may be null) and copied into the kernel's layout without any float work; channel bits
  // beyond C are ignored. Excludes in_scale / in_threshold.
  const uint8_t* packed_in = nullptr;
  // float (N, O, OH, OW) added to the output in the epilogue (a residual block's shortcut):
  // y = (alpha * dot + bias) + residual, the rounding of a separate add.
  const float* residual = nullptr;
  // Bit-packed output instead of the float `out` (which may be null): (N, OH, OW, Ob) bytes,
  // bit 1 (-1) where y * out_scale[o] < out_threshold[o], else 0 (NaN: 0), y the float output
  // the op would write: exactly the binarisation a following conv with input thresholds
  // out_scale / out_threshold applies to that float output. (O,) each; needs the workspace
  // of workspace_bytes(g, true).
  const float* out_scale = nullptr;
  const float* out_threshold = nullptr;
  uint8_t* packed_out = nullptr;
};

// out = alpha * conv(b(x), sign(w)) (+ bias) (+ residual), zero padding at the borders.
//   x: float (N, C, H, W) (or io.packed_in); w: packed bits (O, KH, KW, Cb bytes);
//   alpha, bias: (O,) (bias may be null); out: float (N, O, OH, OW) (or io.packed_out);
//   ws: workspace_bytes(g, io.packed_out != nullptr) bytes.
void conv_forward(const ConvGeom& g, const float* x, const uint8_t* w, const float* alpha,
                  const float* bias, float* out, void* ws, int kernel,
                  const ConvIO& io = ConvIO());

}  // namespace xnor

#endif  // MXCOMPRESS_XNOR_KERNEL_H_
