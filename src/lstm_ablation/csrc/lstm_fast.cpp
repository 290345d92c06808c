// Fast LSTM layer for every CellSpec variant (issue 4), CPU.
//
// Forward:  Z = x W_ih^T + b for all T in one GEMM (time-major, (T, B, G*H)); then per step
//           z_t += h_{t-1} W_hh^T (one GEMM, in place) and one fused pointwise pass that turns
//           z_t into the activated gates i, f, g, o and writes c_t and h_t.
// Backward: per step only the recurrent part: the pointwise derivative gives dz_t, then
//           dh_{t-1} = dz_t W_hh (one GEMM). dW_hh, dW_ih, db and dx are single GEMMs or
//           reductions over all T*B rows of dZ afterwards.
//
// The variant travels as flags (Variant below); the pointwise code branches on them outside
// its inner loops, so each inner loop is branch-free and vectorises. Loops walk raw pointers
// (never Z[t]-style indexing of a saved tensor inside the autograd graph, which would make
// backward quadratic in T).
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

enum Act : int64_t { TANH = 0, SIGMOID = 1, IDENTITY = 2 };
enum Forget : int64_t { F_NONE = 0, F_LEARNED = 1, F_COUPLED = 2 };

struct Variant {
  bool has_i, has_o, peep;
  int64_t forget, act_g, act_h;
  // Column offset (in units of H) of each gate's rows in z; -1 when the gate has no weights.
  int64_t col_i, col_f, col_g, col_o;
  // Row of each gate in the peephole matrix (P, H); -1 when it has none.
  int64_t peep_i, peep_f, peep_o;
};

Variant make_variant(bool has_i, int64_t forget, bool has_o, int64_t act_g, int64_t act_h, bool peep) {
  TORCH_CHECK(forget != F_COUPLED || has_i, "lstm_fast: coupled forget gate needs an input gate");
  Variant v{has_i, has_o, peep, forget, act_g, act_h, -1, -1, -1, -1, -1, -1, -1};
  int64_t col = 0, row = 0;  // rows in nn.LSTM order i, f, g, o; peepholes on learned sigmoid gates
  if (has_i) { v.col_i = col++; if (peep) v.peep_i = row++; }
  if (forget == F_LEARNED) { v.col_f = col++; if (peep) v.peep_f = row++; }
  v.col_g = col++;
  if (has_o) { v.col_o = col++; if (peep) v.peep_o = row++; }
  return v;
}

// ---- activations --------------------------------------------------------------------------
// float: exp by range reduction and a Cephes polynomial (~1 ulp), written so that GCC
// vectorises it (glibc's expf/tanhf are scalar calls). double: libm, for gradcheck.
inline float fast_exp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float big = 12582912.0f;  // 1.5 * 2^23: adding it rounds to the nearest integer
  float n = (x * 1.44269504088896341f + big) - big;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
inline double fast_exp(double x) { return std::exp(x); }

template <typename T> inline T sigmoid(T x) { return T(1) / (T(1) + fast_exp(-x)); }
template <typename T> inline T tanh_(T x) { return T(2) / (T(1) + fast_exp(T(-2) * x)) - T(1); }
template <> inline double tanh_(double x) { return std::tanh(x); }

// y = act(y) in place over n elements.
template <typename T> void activate(int64_t act, T* __restrict__ y, int64_t n) {
  if (act == TANH) for (int64_t j = 0; j < n; ++j) y[j] = tanh_(y[j]);
  else if (act == SIGMOID) for (int64_t j = 0; j < n; ++j) y[j] = sigmoid(y[j]);
}

// d = act'(pre) written from the activated value y = act(pre).
template <typename T> void activate_grad(int64_t act, const T* __restrict__ y, T* __restrict__ d, int64_t n) {
  if (act == TANH) for (int64_t j = 0; j < n; ++j) d[j] = T(1) - y[j] * y[j];
  else if (act == SIGMOID) for (int64_t j = 0; j < n; ++j) d[j] = y[j] * (T(1) - y[j]);
  else for (int64_t j = 0; j < n; ++j) d[j] = T(1);
}

// ---- one step, one batch row ---------------------------------------------------------------
// Scratch rows of length H, allocated once per call. `one` is all ones and `zero` all zeros:
// a missing gate reads as 1 and a missing peephole as 0, so the inner loops need no branches.
template <typename T> struct Scratch {
  std::vector<T> one, zero, f, a, ad, gd, dh, dct;
  explicit Scratch(int64_t H) : one(H, T(1)), zero(H, T(0)), f(H), a(H), ad(H), gd(H), dh(H), dct(H) {}
};

// z: the row's pre-activations (G*H), overwritten by the activated gates.
// cp: c_{t-1}; c: c_t (out); h: h_t (out). p*: peephole rows (zeros when absent).
template <typename T>
void forward_row(const Variant& v, int64_t H, T* z, const T* __restrict__ cp, T* __restrict__ c,
                 T* __restrict__ h, const T* __restrict__ pi, const T* __restrict__ pf,
                 const T* __restrict__ po, Scratch<T>& s) {
  T* __restrict__ i = v.has_i ? z + v.col_i * H : s.one.data();
  T* __restrict__ g = z + v.col_g * H;
  T* __restrict__ o = v.has_o ? z + v.col_o * H : nullptr;
  if (v.has_i) for (int64_t j = 0; j < H; ++j) i[j] = sigmoid(i[j] + pi[j] * cp[j]);
  T* __restrict__ f = s.one.data();
  if (v.forget == F_LEARNED) {
    f = z + v.col_f * H;
    for (int64_t j = 0; j < H; ++j) f[j] = sigmoid(f[j] + pf[j] * cp[j]);
  } else if (v.forget == F_COUPLED) {
    f = s.f.data();
    for (int64_t j = 0; j < H; ++j) f[j] = T(1) - i[j];
  }
  activate(v.act_g, g, H);
  for (int64_t j = 0; j < H; ++j) c[j] = f[j] * cp[j] + i[j] * g[j];
  if (v.has_o) for (int64_t j = 0; j < H; ++j) o[j] = sigmoid(o[j] + po[j] * c[j]);
  for (int64_t j = 0; j < H; ++j) h[j] = c[j];
  activate(v.act_h, h, H);
  if (v.has_o) for (int64_t j = 0; j < H; ++j) h[j] *= o[j];
}

// z: the row's activated gates (saved by forward); dz: their pre-activation gradients (out).
// go: dL/dh_t from the layer output (nullptr if none); dh_rec: dL/dh_t through h_{t+1};
// dc: dL/dc_t through c_{t+1} on entry, dL/dc_{t-1} on exit. acc_*: peephole grads (+=).
template <typename T, typename A>
void backward_row(const Variant& v, int64_t H, const T* __restrict__ z, T* __restrict__ dz,
                  const T* __restrict__ cp, const T* __restrict__ c, const T* __restrict__ go,
                  const T* __restrict__ dh_rec, T* __restrict__ dc, const T* __restrict__ pi,
                  const T* __restrict__ pf, const T* __restrict__ po, A* __restrict__ acc_i,
                  A* __restrict__ acc_f, A* __restrict__ acc_o, Scratch<T>& s) {
  const T* __restrict__ i = v.has_i ? z + v.col_i * H : s.one.data();
  const T* __restrict__ g = z + v.col_g * H;
  T* __restrict__ a = s.a.data();    // act_h(c_t)
  T* __restrict__ ad = s.ad.data();  // act_h'(c_t)
  T* __restrict__ dh = s.dh.data();
  T* __restrict__ dct = s.dct.data();  // total dL/dc_t
  if (go) for (int64_t j = 0; j < H; ++j) dh[j] = go[j] + dh_rec[j];
  else for (int64_t j = 0; j < H; ++j) dh[j] = dh_rec[j];
  for (int64_t j = 0; j < H; ++j) a[j] = c[j];
  activate(v.act_h, a, H);
  activate_grad(v.act_h, a, ad, H);
  if (v.has_o) {  // h = o * a(c), o = sigmoid(. + p_o * c_t)
    const T* __restrict__ o = z + v.col_o * H;
    T* __restrict__ dzo = dz + v.col_o * H;
    for (int64_t j = 0; j < H; ++j) {
      dzo[j] = dh[j] * a[j] * o[j] * (T(1) - o[j]);
      dct[j] = dc[j] + dh[j] * o[j] * ad[j] + dzo[j] * po[j];
    }
    if (acc_o) for (int64_t j = 0; j < H; ++j) acc_o[j] += A(dzo[j]) * A(c[j]);
  } else {
    for (int64_t j = 0; j < H; ++j) dct[j] = dc[j] + dh[j] * ad[j];
  }
  // c = f * c_{t-1} + i * g
  T* __restrict__ gd = s.gd.data();
  T* __restrict__ dzg = dz + v.col_g * H;
  activate_grad(v.act_g, g, gd, H);
  for (int64_t j = 0; j < H; ++j) dzg[j] = dct[j] * i[j] * gd[j];
  for (int64_t j = 0; j < H; ++j) dc[j] = dct[j];  // f = 1; the gates below rescale it
  if (v.has_i) {
    T* __restrict__ dzi = dz + v.col_i * H;
    if (v.forget == F_COUPLED) {  // c = (1 - i) c_{t-1} + i g
      for (int64_t j = 0; j < H; ++j) {
        dzi[j] = dct[j] * (g[j] - cp[j]) * i[j] * (T(1) - i[j]);
        dc[j] = dct[j] * (T(1) - i[j]) + dzi[j] * pi[j];
      }
    } else {
      for (int64_t j = 0; j < H; ++j) {
        dzi[j] = dct[j] * g[j] * i[j] * (T(1) - i[j]);
        dc[j] += dzi[j] * pi[j];
      }
    }
    if (acc_i) for (int64_t j = 0; j < H; ++j) acc_i[j] += A(dzi[j]) * A(cp[j]);
  }
  if (v.forget == F_LEARNED) {
    const T* __restrict__ f = z + v.col_f * H;
    T* __restrict__ dzf = dz + v.col_f * H;
    for (int64_t j = 0; j < H; ++j) {
      dzf[j] = dct[j] * cp[j] * f[j] * (T(1) - f[j]);
      // dc already holds dct (+ dzi p_i); the f-path replaces its dct term by dct * f.
      dc[j] += dct[j] * (f[j] - T(1)) + dzf[j] * pf[j];
    }
    if (acc_f) for (int64_t j = 0; j < H; ++j) acc_f[j] += A(dzf[j]) * A(cp[j]);
  }
}

at::Tensor peephole_row(const c10::optional<at::Tensor>& peephole, int64_t row, const at::Tensor& zeros) {
  return row >= 0 ? peephole->select(0, row) : zeros;
}

}  // namespace

// x (B, T, I); h0, c0 (B, H); w_ih (G*H, I); w_hh (G*H, H); bias (G*H,); peephole (P, H) or None.
// Returns out (B, T, H), h_T, c_T (B, H) and, when save, Z (T, B, G*H) activated gates and
// C (T, B, H) cell states for backward.
std::vector<at::Tensor> lstm_forward(const at::Tensor& x, const at::Tensor& h0_, const at::Tensor& c0_,
                                     const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& bias,
                                     const c10::optional<at::Tensor>& peephole, bool has_i, int64_t forget,
                                     bool has_o, int64_t act_g, int64_t act_h, bool save) {
  const Variant v = make_variant(has_i, forget, has_o, act_g, act_h, peephole.has_value());
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = w_hh.size(1), GH = w_hh.size(0);
  TORCH_CHECK(T >= 1, "lstm_fast: need at least one time step");
  TORCH_CHECK(GH == (v.has_i + (v.forget == F_LEARNED) + 1 + v.has_o) * H, "lstm_fast: weight rows do not match the variant");
  at::Tensor h0 = h0_.contiguous(), c0 = c0_.contiguous();
  at::Tensor x_tm = x.transpose(0, 1).contiguous().view({T * B, I});
  at::Tensor Z = at::addmm(bias, x_tm, w_ih.t()).view({T, B, GH});  // x_t W_ih^T + b for all t
  at::Tensor out = at::empty({B, T, H}, x.options());
  at::Tensor C = at::empty({save ? T : 2, B, H}, x.options());  // no grad: ping-pong c_t
  at::Tensor w_hh_t = w_hh.t();
  at::Tensor zeros = at::zeros({H}, x.options());

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_fast_forward", [&] {
    Scratch<scalar_t> s(H);
    at::Tensor pi_t = peephole_row(peephole, v.peep_i, zeros), pf_t = peephole_row(peephole, v.peep_f, zeros),
               po_t = peephole_row(peephole, v.peep_o, zeros);
    const scalar_t *pi = pi_t.data_ptr<scalar_t>(), *pf = pf_t.data_ptr<scalar_t>(), *po = po_t.data_ptr<scalar_t>();
    std::vector<at::Tensor> z_steps = Z.unbind(0), h_steps = out.unbind(1);  // views, made once
    scalar_t* out_p = out.data_ptr<scalar_t>();
    scalar_t* C_p = C.data_ptr<scalar_t>();
    for (int64_t t = 0; t < T; ++t) {
      z_steps[t].addmm_(t == 0 ? h0 : h_steps[t - 1], w_hh_t);  // z_t = x_t W_ih^T + b + h_{t-1} W_hh^T
      scalar_t* z = z_steps[t].data_ptr<scalar_t>();
      const scalar_t* cp = t == 0 ? c0.data_ptr<scalar_t>() : C_p + (save ? t - 1 : (t - 1) % 2) * B * H;
      scalar_t* c = C_p + (save ? t : t % 2) * B * H;
      for (int64_t b = 0; b < B; ++b)
        forward_row(v, H, z + b * GH, cp + b * H, c + b * H, out_p + (b * T + t) * H, pi, pf, po, s);
    }
  });
  at::Tensor h_T = out.select(1, T - 1).clone(), c_T = C[save ? T - 1 : (T - 1) % 2].clone();
  if (!save) return {out, h_T, c_T};
  return {out, h_T, c_T, Z, C};
}

// Gradients of lstm_forward. grad_out (B, T, H), grad_h_T, grad_c_T (B, H): any may be None.
// Returns dx (B, T, I) (undefined unless need_dx), dh0, dc0, dW_ih, dW_hh, db, dpeephole.
std::vector<at::Tensor> lstm_backward(const c10::optional<at::Tensor>& grad_out_,
                                      const c10::optional<at::Tensor>& grad_h_T,
                                      const c10::optional<at::Tensor>& grad_c_T, const at::Tensor& x,
                                      const at::Tensor& h0_, const at::Tensor& c0_, const at::Tensor& w_ih,
                                      const at::Tensor& w_hh, const c10::optional<at::Tensor>& peephole,
                                      const at::Tensor& out, const at::Tensor& Z, const at::Tensor& C,
                                      bool has_i, int64_t forget, bool has_o, int64_t act_g, int64_t act_h,
                                      bool need_dx) {
  const Variant v = make_variant(has_i, forget, has_o, act_g, act_h, peephole.has_value());
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = w_hh.size(1), GH = w_hh.size(0);
  at::Tensor h0 = h0_.contiguous(), c0 = c0_.contiguous();
  // Rows of grad_out are read in place when their inner stride is 1 (y.sum() gives an expanded one).
  at::Tensor grad_out;
  if (grad_out_.has_value()) grad_out = grad_out_->stride(2) == 1 ? *grad_out_ : grad_out_->contiguous();
  at::Tensor dh_rec = grad_h_T.has_value() ? grad_h_T->contiguous().clone() : at::zeros({B, H}, x.options());
  at::Tensor dc = grad_c_T.has_value() ? grad_c_T->contiguous().clone() : at::zeros({B, H}, x.options());
  at::Tensor dZ = at::empty({T, B, GH}, x.options());
  at::Tensor zeros = at::zeros({H}, x.options());
  at::Tensor dpeep;

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_fast_backward", [&] {
    using acc_t = double;  // peephole grads sum T*B terms per unit
    Scratch<scalar_t> s(H);
    at::Tensor pi_t = peephole_row(peephole, v.peep_i, zeros), pf_t = peephole_row(peephole, v.peep_f, zeros),
               po_t = peephole_row(peephole, v.peep_o, zeros);
    const scalar_t *pi = pi_t.data_ptr<scalar_t>(), *pf = pf_t.data_ptr<scalar_t>(), *po = po_t.data_ptr<scalar_t>();
    const int64_t P = peephole.has_value() ? peephole->size(0) : 0;
    std::vector<acc_t> acc(std::max<int64_t>(P, 1) * H, acc_t(0));
    acc_t* acc_i = v.peep_i >= 0 ? acc.data() + v.peep_i * H : nullptr;
    acc_t* acc_f = v.peep_f >= 0 ? acc.data() + v.peep_f * H : nullptr;
    acc_t* acc_o = v.peep_o >= 0 ? acc.data() + v.peep_o * H : nullptr;
    std::vector<at::Tensor> dz_steps = dZ.unbind(0);
    const scalar_t* Z_p = Z.data_ptr<scalar_t>();
    const scalar_t* C_p = C.data_ptr<scalar_t>();
    const scalar_t* go_p = grad_out.defined() ? grad_out.data_ptr<scalar_t>() : nullptr;
    const int64_t go_sb = grad_out.defined() ? grad_out.stride(0) : 0, go_st = grad_out.defined() ? grad_out.stride(1) : 0;
    scalar_t* dc_p = dc.data_ptr<scalar_t>();
    scalar_t* dh_p = dh_rec.data_ptr<scalar_t>();
    for (int64_t t = T - 1; t >= 0; --t) {
      const scalar_t* z = Z_p + t * B * GH;
      const scalar_t* c = C_p + t * B * H;
      const scalar_t* cp = t == 0 ? c0.data_ptr<scalar_t>() : C_p + (t - 1) * B * H;
      scalar_t* dz = dz_steps[t].data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b)
        backward_row<scalar_t, acc_t>(v, H, z + b * GH, dz + b * GH, cp + b * H, c + b * H,
                                      go_p ? go_p + b * go_sb + t * go_st : nullptr, dh_p + b * H, dc_p + b * H,
                                      pi, pf, po, acc_i, acc_f, acc_o, s);
      at::mm_out(dh_rec, dz_steps[t], w_hh);  // dL/dh_{t-1} through z_t
    }
    if (P) dpeep = at::from_blob(acc.data(), {P, H}, at::kDouble).to(x.scalar_type(), false, /*copy=*/true);
  });
  // Weight, bias and input gradients: one GEMM or reduction each over all T*B rows.
  at::Tensor dZ2 = dZ.view({T * B, GH});
  at::Tensor h_prev = at::cat({h0.unsqueeze(0), out.narrow(1, 0, T - 1).transpose(0, 1)}, 0).view({T * B, H});
  at::Tensor x_tm = x.transpose(0, 1).contiguous().view({T * B, I});
  at::Tensor dw_hh = dZ2.t().mm(h_prev);
  at::Tensor dw_ih = dZ2.t().mm(x_tm);
  at::Tensor db = dZ2.sum(0);
  at::Tensor dx = need_dx ? dZ2.mm(w_ih).view({T, B, I}).transpose(0, 1) : at::Tensor();
  return {dx, dh_rec, dc, dw_ih, dw_hh, db, dpeep};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &lstm_forward, "variant LSTM layer, forward");
  m.def("backward", &lstm_backward, "variant LSTM layer, backward");
}
