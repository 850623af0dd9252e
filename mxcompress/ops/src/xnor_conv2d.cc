// MXNet custom-op library registering `xnor_conv2d`: a binary (xnor-popcount) 2-D
// convolution for inference, usable as mx.nd.xnor_conv2d / mx.sym.xnor_conv2d / F.xnor_conv2d
// after mx.library.load(<absolute path to this .so>).
//
// Inputs:  data   float32 (N, C, H, W)     binarised inside: +1 if x >= 0, -1 if x < 0;
//                                          with packed_input, uint8 (N, H, W, ceil(C / 8)):
//                                          already binarised, bit-packed activations (the
//                                          weights' tap layout per pixel: channel c is bit
//                                          c % 8 of byte c / 8, 1 = -1), C = in_channels
//          weight uint8   (O, KH, KW, ceil(C / 8))  sign bits packed along C (1 = -1)
//          alpha  float32 (O,)             per-output-channel scale
//          bias   float32 (O,)             only when no_bias is false
//          in_scale, in_threshold  float32 (C,)   only when input_threshold is true: data
//                                          is binarised per channel instead, -1 where
//                                          data * in_scale < in_threshold (an inference
//                                          BatchNorm + sign folded in; xnor_kernel.h)
//          out_scale, out_threshold  float32 (O,)  only when output_threshold is true
//          residual float32 (N, O, OH, OW)  only when residual is true: added to the output
//                                          in the epilogue (a residual block's shortcut)
// Output:  float32 (N, O, OH, OW) y = alpha * Convolution(sign(data), sign(W)) (+ bias)
//          (+ residual), with the zero padding of a float Convolution (padded taps
//          contribute 0); with output_threshold, uint8 (N, OH, OW, ceil(O / 8)) instead: y
//          binarised and bit-packed in the layout of a packed input, bit 1 (-1) where
//          y * out_scale[o] < out_threshold[o] (NaN: 0), unused high bits 0 -- the input of a
//          following xnor_conv2d(packed_input=True), exactly what that conv would compute
//          from the float y with input_threshold and the same scale / threshold.
// Attributes: kernel, num_filter (required); stride (1,1), pad (0,0), dilate (1,1) (alias
//          dilation), no_bias (True), input_threshold (False), residual (False),
//          output_threshold (False), packed_input (False) with in_channels (C, required
//          with packed_input and only with it; excludes input_threshold).
#include <cctype>
#include <climits>
#include <cstdint>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "mxnet/lib_api.h"
#include "xnor_kernel.h"

using namespace mxnet::ext;  // NOLINT

namespace {

const char* kOp = "xnor_conv2d";

struct Params {
  int64_t kernel[2], stride[2], pad[2], dilate[2];
  int64_t num_filter;
  bool no_bias;
  bool input_threshold;
  bool residual;
  bool output_threshold;
  bool packed_input;
  int64_t in_channels;  // C of a packed input (0 otherwise)
};

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (std::isspace(static_cast<unsigned char>(s[b])) || s[b] == '(' || s[b] == '[')) ++b;
  while (e > b && (std::isspace(static_cast<unsigned char>(s[e - 1])) || s[e - 1] == ')' ||
                   s[e - 1] == ']' || s[e - 1] == ','))
    --e;
  return s.substr(b, e - b);
}

bool parse_int(const std::string& text, int64_t* out) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  size_t i = (t[0] == '-' || t[0] == '+') ? 1 : 0;
  if (i == t.size() || t.size() > 18) return false;
  for (size_t j = i; j < t.size(); ++j)
    if (!std::isdigit(static_cast<unsigned char>(t[j]))) return false;
  *out = std::stoll(t);
  return true;
}

// "(3, 3)", "[3,3]", "3" -> two ints (a single value is used for both axes).
bool parse_pair(const std::string& name, const std::string& text, int64_t lo, int64_t out[2]) {
  std::vector<std::string> parts;
  std::stringstream ss(trim(text));
  std::string item;
  while (std::getline(ss, item, ',')) parts.push_back(item);
  bool ok = (parts.size() == 1 || parts.size() == 2);
  for (size_t i = 0; ok && i < parts.size(); ++i) ok = parse_int(parts[i], &out[i]);
  if (ok && parts.size() == 1) out[1] = out[0];
  if (ok) ok = out[0] >= lo && out[1] >= lo && out[0] <= 1 << 20 && out[1] <= 1 << 20;
  if (!ok) {
    MX_ERROR_MSG << kOp << ": attribute '" << name << "' must be one or two integers >= " << lo
                 << " such as (" << (lo > 0 ? lo : 1) << ", " << (lo > 0 ? lo : 1)
                 << "), got '" << text << "'";
  }
  return ok;
}

bool parse_bool(const char* name, const std::string& text, bool* out) {
  const std::string v = trim(text);
  if (v == "True" || v == "true" || v == "1") {
    *out = true;
  } else if (v == "False" || v == "false" || v == "0") {
    *out = false;
  } else {
    MX_ERROR_MSG << kOp << ": attribute '" << name << "' must be True or False, got '" << v
                 << "'";
    return false;
  }
  return true;
}

bool parse_params(const std::unordered_map<std::string, std::string>& attrs, Params* p) {
  static const char* known[] = {"kernel", "stride", "pad", "dilate", "dilation", "num_filter",
                                "no_bias", "input_threshold", "residual", "output_threshold",
                                "packed_input", "in_channels"};
  for (const auto& kv : attrs) {
    if (kv.first.size() >= 2 && kv.first.compare(0, 2, "__") == 0) continue;  // hidden attrs
    bool ok = false;
    for (const char* k : known) ok = ok || kv.first == k;
    if (!ok) {
      MX_ERROR_MSG << kOp << ": unknown attribute '" << kv.first << "' (valid: kernel, "
                   << "num_filter, stride, pad, dilate, no_bias, input_threshold, residual, "
                   << "output_threshold, packed_input, in_channels)";
      return false;
    }
  }
  auto get = [&](const char* key) -> const std::string* {
    auto it = attrs.find(key);
    return it == attrs.end() ? nullptr : &it->second;
  };
  if (!get("kernel") || !get("num_filter")) {
    MX_ERROR_MSG << kOp << ": attributes 'kernel' and 'num_filter' are required";
    return false;
  }
  if (!parse_pair("kernel", *get("kernel"), 1, p->kernel)) return false;
  p->stride[0] = p->stride[1] = 1;
  p->pad[0] = p->pad[1] = 0;
  p->dilate[0] = p->dilate[1] = 1;
  if (get("stride") && !parse_pair("stride", *get("stride"), 1, p->stride)) return false;
  if (get("pad") && !parse_pair("pad", *get("pad"), 0, p->pad)) return false;
  if (get("dilate") && get("dilation")) {
    MX_ERROR_MSG << kOp << ": give 'dilate' or its alias 'dilation', not both";
    return false;
  }
  const char* dkey = get("dilation") ? "dilation" : "dilate";
  if (get(dkey) && !parse_pair(dkey, *get(dkey), 1, p->dilate)) return false;
  if (!parse_int(*get("num_filter"), &p->num_filter) || p->num_filter < 1 ||
      p->num_filter > (1 << 24)) {
    MX_ERROR_MSG << kOp << ": attribute 'num_filter' must be a positive integer, got '"
                 << *get("num_filter") << "'";
    return false;
  }
  p->no_bias = true;
  p->input_threshold = false;
  p->residual = false;
  if (get("residual") && !parse_bool("residual", *get("residual"), &p->residual)) return false;
  if (get("no_bias") && !parse_bool("no_bias", *get("no_bias"), &p->no_bias)) return false;
  if (get("input_threshold") &&
      !parse_bool("input_threshold", *get("input_threshold"), &p->input_threshold))
    return false;
  p->output_threshold = false;
  p->packed_input = false;
  p->in_channels = 0;
  if (get("output_threshold") &&
      !parse_bool("output_threshold", *get("output_threshold"), &p->output_threshold))
    return false;
  if (get("packed_input") && !parse_bool("packed_input", *get("packed_input"), &p->packed_input))
    return false;
  if (get("in_channels")) {
    if (!p->packed_input) {
      MX_ERROR_MSG << kOp << ": attribute 'in_channels' is only valid with packed_input=True "
                   << "(a float input's channels come from its shape)";
      return false;
    }
    if (!parse_int(*get("in_channels"), &p->in_channels) || p->in_channels < 1 ||
        p->in_channels > (1 << 24)) {
      MX_ERROR_MSG << kOp << ": attribute 'in_channels' must be a positive integer, got '"
                   << *get("in_channels") << "'";
      return false;
    }
  }
  if (p->packed_input && p->in_channels == 0) {
    MX_ERROR_MSG << kOp << ": attribute 'in_channels' (the input channels C) is required with "
                 << "packed_input=True (the packed data holds ceil(C / 8) bytes per pixel)";
    return false;
  }
  if (p->packed_input && p->input_threshold) {
    MX_ERROR_MSG << kOp << ": attributes 'packed_input' and 'input_threshold' cannot both be "
                 << "True: a packed input is already binarised (move the thresholds to the "
                 << "producer's output_threshold)";
    return false;
  }
  return true;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::stringstream ss;
  ss << "(";
  for (size_t i = 0; i < s.size(); ++i) ss << (i ? ", " : "") << s[i];
  ss << (s.size() == 1 ? ",)" : ")");
  return ss.str();
}

// Geometry from params and the data shape; false (with a message) if the output is empty.
// A packed input's shape is (N, H, W, ceil(in_channels / 8)).
bool make_geometry(const Params& p, const std::vector<int64_t>& data, xnor::ConvGeom* g) {
  if (data.size() != 4) {
    MX_ERROR_MSG << kOp << ": input 'data' must be 4-D "
                 << (p.packed_input ? "(N, H, W, ceil(in_channels / 8)) with packed_input=True"
                                    : "(N, C, H, W)")
                 << ", got shape " << shape_str(data);
    return false;
  }
  for (int64_t d : data) {
    if (d < 1) {
      MX_ERROR_MSG << kOp << ": input 'data' has an empty dimension, shape " << shape_str(data);
      return false;
    }
  }
  if (p.packed_input) {
    const int64_t cb = (p.in_channels + 7) / 8;
    if (data[3] != cb) {
      MX_ERROR_MSG << kOp << ": input 'data' with packed_input=True must have shape (N, H, W, "
                   << cb << ") for in_channels=" << p.in_channels << " (ceil(C / 8) bytes per "
                   << "pixel), got " << shape_str(data);
      return false;
    }
    g->N = data[0], g->C = p.in_channels, g->H = data[1], g->W = data[2];
  } else {
    g->N = data[0], g->C = data[1], g->H = data[2], g->W = data[3];
  }
  g->O = p.num_filter, g->KH = p.kernel[0], g->KW = p.kernel[1];
  g->SH = p.stride[0], g->SW = p.stride[1], g->PH = p.pad[0], g->PW = p.pad[1];
  g->DH = p.dilate[0], g->DW = p.dilate[1];
  const int64_t eh = g->DH * (g->KH - 1) + 1, ew = g->DW * (g->KW - 1) + 1;
  if (g->H + 2 * g->PH < eh || g->W + 2 * g->PW < ew) {
    MX_ERROR_MSG << kOp << ": padded input " << g->H + 2 * g->PH << "x" << g->W + 2 * g->PW
                 << " is smaller than the dilated kernel " << eh << "x" << ew
                 << " (data shape " << shape_str(data) << ")";
    return false;
  }
  xnor::finish_geometry(g);
  return true;
}

std::vector<int64_t> weight_shape(const xnor::ConvGeom& g) {
  return {g.O, g.KH, g.KW, g.Cb};
}

// The op's inputs in order: data, weight, alpha[, bias][, in_scale, in_threshold]
// [, out_scale, out_threshold][, residual].
std::vector<std::string> input_names(const Params& p) {
  std::vector<std::string> names = {"data", "weight", "alpha"};
  if (!p.no_bias) names.push_back("bias");
  if (p.input_threshold) {
    names.push_back("in_scale");
    names.push_back("in_threshold");
  }
  if (p.output_threshold) {
    names.push_back("out_scale");
    names.push_back("out_threshold");
  }
  if (p.residual) names.push_back("residual");
  return names;
}

// dtype of input i (the order of input_names): uint8 for the packed weight and a packed data.
int input_dtype(const Params& p, size_t i) {
  return (i == 1 || (i == 0 && p.packed_input)) ? kUint8 : kFloat32;
}

std::string input_dtype_hint(const Params& p, size_t i) {
  if (i == 1) return " (pack the weights with mxcompress.ops.pack_weights)";
  if (i == 0 && p.packed_input)
    return " (packed_input=True: bit-packed activations, e.g. the output of an xnor_conv2d "
           "with output_threshold=True or mxcompress.ops.pack_activations)";
  if (i == 0) return " (uint8 bit-packed activations need packed_input=True)";
  return "";
}

// Shapes of the inputs after data, in the order of input_names.
std::vector<std::vector<int64_t> > param_shapes(const Params& p, const xnor::ConvGeom& g) {
  std::vector<std::vector<int64_t> > shapes = {weight_shape(g), {g.O}};
  if (!p.no_bias) shapes.push_back({g.O});
  if (p.input_threshold) {
    shapes.push_back({g.C});
    shapes.push_back({g.C});
  }
  if (p.output_threshold) {
    shapes.push_back({g.O});
    shapes.push_back({g.O});
  }
  if (p.residual) shapes.push_back({g.N, g.O, g.OH, g.OW});
  return shapes;
}

// The output's shape: float (N, O, OH, OW) or, with output_threshold, packed (N, OH, OW, Ob).
std::vector<int64_t> output_shape(const Params& p, const xnor::ConvGeom& g) {
  if (p.output_threshold) return {g.N, g.OH, g.OW, g.Ob};
  return {g.N, g.O, g.OH, g.OW};
}

MXReturnValue parseAttrs(const std::unordered_map<std::string, std::string>& attrs,
                         int* num_in, int* num_out) {
  Params p;
  if (!parse_params(attrs, &p)) return MX_FAIL;
  *num_in = static_cast<int>(input_names(p).size());
  *num_out = 1;
  return MX_SUCCESS;
}

MXReturnValue inferType(const std::unordered_map<std::string, std::string>& attrs,
                        std::vector<int>* in_types, std::vector<int>* out_types) {
  Params p;
  if (!parse_params(attrs, &p)) return MX_FAIL;
  const std::vector<std::string> names = input_names(p);
  for (size_t i = 0; i < in_types->size() && i < names.size(); ++i) {
    const int want = input_dtype(p, i);
    int& t = (*in_types)[i];
    if (t == -1 || t == kUNSET) t = want;
    if (t != want) {
      MX_ERROR_MSG << kOp << ": input '" << names[i] << "' must be "
                   << (want == kUint8 ? "uint8" : "float32") << ", got dtype code " << t
                   << input_dtype_hint(p, i);
      return MX_FAIL;
    }
  }
  (*out_types)[0] = p.output_threshold ? kUint8 : kFloat32;
  return MX_SUCCESS;
}

bool known(const std::vector<unsigned int>& s) {
  if (s.empty()) return false;
  for (unsigned d : s)
    if (d == 0 || d == UINT_MAX) return false;
  return true;
}

MXReturnValue inferShape(const std::unordered_map<std::string, std::string>& attrs,
                         std::vector<std::vector<unsigned int> >* in_shapes,
                         std::vector<std::vector<unsigned int> >* out_shapes) {
  Params p;
  if (!parse_params(attrs, &p)) return MX_FAIL;
  const std::vector<unsigned int>& ds = (*in_shapes)[0];
  if (!known(ds)) {
    MX_ERROR_MSG << kOp << ": the shape of input 'data' must be known "
                 << (p.packed_input ? "(N, H, W, ceil(in_channels / 8))" : "(N, C, H, W)");
    return MX_FAIL;
  }
  xnor::ConvGeom g;
  if (!make_geometry(p, std::vector<int64_t>(ds.begin(), ds.end()), &g)) return MX_FAIL;
  const std::vector<std::vector<int64_t> > want = param_shapes(p, g);
  const std::vector<std::string> names = input_names(p);
  for (size_t i = 1; i < in_shapes->size() && i < names.size(); ++i) {
    std::vector<unsigned int>& s = (*in_shapes)[i];
    const std::vector<int64_t>& w = want[i - 1];
    if (!known(s)) {
      s.assign(w.begin(), w.end());
      continue;
    }
    if (std::vector<int64_t>(s.begin(), s.end()) != w) {
      MX_ERROR_MSG << kOp << ": input '" << names[i] << "' must have shape "
                   << shape_str(w) << " for data (N, C, H, W) = "
                   << shape_str({g.N, g.C, g.H, g.W}) << " and num_filter " << g.O << ", got "
                   << shape_str(std::vector<int64_t>(s.begin(), s.end()))
                   << (i == 1 ? " (weights are packed along C into ceil(C / 8) bytes)" : "");
      return MX_FAIL;
    }
  }
  const std::vector<int64_t> out = output_shape(p, g);
  (*out_shapes)[0].assign(out.begin(), out.end());
  return MX_SUCCESS;
}

MXReturnValue forward(const std::unordered_map<std::string, std::string>& attrs,
                      std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                      const OpResource& res) {
  Params p;
  if (!parse_params(attrs, &p)) return MX_FAIL;
  std::vector<MXTensor>& in = *inputs;
  const std::vector<std::string> names = input_names(p);
  if (in.size() != names.size()) {
    MX_ERROR_MSG << kOp << ": expected " << names.size() << " inputs, got " << in.size();
    return MX_FAIL;
  }
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i].dtype != input_dtype(p, i)) {
      MX_ERROR_MSG << kOp << ": input '" << names[i] << "' has the wrong dtype (code "
                   << in[i].dtype << ", must be "
                   << (input_dtype(p, i) == kUint8 ? "uint8" : "float32") << ")"
                   << input_dtype_hint(p, i);
      return MX_FAIL;
    }
    if (in[i].ctx.dev_type != "cpu") {
      MX_ERROR_MSG << kOp << ": only the CPU is supported, input '" << names[i]
                   << "' is on " << in[i].ctx.dev_type;
      return MX_FAIL;
    }
  }
  xnor::ConvGeom g;
  if (!make_geometry(p, in[0].shape, &g)) return MX_FAIL;
  const std::vector<std::vector<int64_t> > want_shape = param_shapes(p, g);
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i].shape != want_shape[i - 1]) {
      MX_ERROR_MSG << kOp << ": input '" << names[i] << "' must have shape "
                   << shape_str(want_shape[i - 1]) << ", got " << shape_str(in[i].shape);
      return MX_FAIL;
    }
  }
  const uint8_t* w = in[1].data<uint8_t>();
  if (!xnor::weight_padding_ok(g, w)) {
    MX_ERROR_MSG << kOp << ": packed weight has bits set beyond channel " << g.C
                 << " (padding bits must be 0; use mxcompress.ops.pack_weights)";
    return MX_FAIL;
  }
  MXTensor& out = (*outputs)[0];
  if (out.dtype != (p.output_threshold ? kUint8 : kFloat32) || out.shape != output_shape(p, g)) {
    MX_ERROR_MSG << kOp << ": the output must be "
                 << (p.output_threshold ? "uint8 " : "float32 ") << shape_str(output_shape(p, g))
                 << ", got dtype code " << out.dtype << " shape " << shape_str(out.shape);
    return MX_FAIL;
  }
  const size_t ws_bytes = xnor::workspace_bytes(g, p.output_threshold);
  if (ws_bytes > static_cast<size_t>(INT_MAX)) {
    MX_ERROR_MSG << kOp << ": workspace of " << ws_bytes << " bytes exceeds 2 GiB; use a "
                 << "smaller batch";
    return MX_FAIL;
  }
  void* ws = res.alloc_cpu(static_cast<int>(ws_bytes));
  if (ws == nullptr) {
    MX_ERROR_MSG << kOp << ": cannot allocate " << ws_bytes << " bytes of workspace";
    return MX_FAIL;
  }
  xnor::ConvIO io;
  size_t next = p.no_bias ? 3 : 4;  // the optional inputs follow in the order of input_names
  if (p.input_threshold) {
    io.in_scale = in[next].data<float>();
    io.in_threshold = in[next + 1].data<float>();
    next += 2;
  }
  if (p.output_threshold) {
    io.out_scale = in[next].data<float>();
    io.out_threshold = in[next + 1].data<float>();
    io.packed_out = out.data<uint8_t>();
    next += 2;
  }
  if (p.residual) io.residual = in[next].data<float>();
  if (p.packed_input) io.packed_in = in[0].data<uint8_t>();
  xnor::conv_forward(g, p.packed_input ? nullptr : in[0].data<float>(), w, in[2].data<float>(),
                     p.no_bias ? nullptr : in[3].data<float>(),
                     p.output_threshold ? nullptr : out.data<float>(), ws, 0, io);
  return MX_SUCCESS;
}

// Registered so hybridised graphs (which build a gradient graph) accept the op; training
// goes through the float graph of mxcompress's binary layers, never through this op.
MXReturnValue backward(const std::unordered_map<std::string, std::string>& attrs,
                       std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                       const OpResource& res) {
  MX_ERROR_MSG << kOp << " is an inference op and has no gradient: train the float binary "
               << "graph (straight-through sign) and convert it afterwards";
  return MX_FAIL;
}

}  // namespace

REGISTER_OP(xnor_conv2d)
    .setForward(forward, "cpu")
    .setBackward(backward, "cpu")
    .setParseAttrs(parseAttrs)
    .setInferType(inferType)
    .setInferShape(inferShape);

MXReturnValue initialize(int version) {
  if (version >= 10700) return MX_SUCCESS;
  MX_ERROR_MSG << "mxcompress xnor ops need MXNet >= 1.7.0, this is " << version;
  return MX_FAIL;
}

// Introspection for the Python loader and benchmarks (plain C symbols).
extern "C" {
// The kernel that runs (MXCOMPRESS_XNOR_KERNEL honoured): 3 AVX-512, 2 AVX2, 1 portable.
int mxcompress_xnor_kernel() { return xnor::resolve_kernel(0); }
// Peak extra bytes of the op for a layer: the workspace it allocates from MXNet (packed
// input, border table, offsets, the private buffers of omp_get_max_threads() threads and,
// with packed_output != 0, the pixel masks of a bit-packed output).
long long mxcompress_xnor_workspace_bytes(long long n, long long c, long long h, long long w,
                                          long long o, long long kh, long long kw,
                                          long long sh, long long sw, long long ph,
                                          long long pw, long long dh, long long dw,
                                          int packed_output) {
  xnor::ConvGeom g = {n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, 0, 0, 0, 0, 0, 0, 0, 0};
  xnor::finish_geometry(&g);
  return static_cast<long long>(xnor::workspace_bytes(g, packed_output != 0));
}
}
