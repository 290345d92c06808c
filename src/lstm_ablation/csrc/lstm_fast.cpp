// Fast LSTM layer for every CellSpec variant (issue 4), CPU.
//
// Forward:  Z = x W_ih^T + b for all T in one GEMM (time-major, (T, B, G*H)); then per step
//           z_t += h_{t-1} W_hh^T (one GEMM, in place) and one fused pointwise pass that turns
//           z_t into the activated gates i, f, g, o and writes c_t and h_t.
// Backward: per step only the recurrent part: the pointwise derivative gives dz_t, then
//           dh_{t-1} = dz_t W_hh (one GEMM). dW_hh, dW_ih, db and dx are single GEMMs or
//           reductions over all T*B rows of dZ afterwards.
//
// Issue 13 adds a coupled input gate (JANET: i = 1 - sigmoid(s_f - beta)), the shift beta of any
// coupled gate (CIFG: f = 1 - sigmoid(s_i - beta)), and gates that read only x_t (gates_read:
// input): then W_hh has only the candidate's rows and the recurrent GEMM writes only its columns.
//
// FGR (Greff et al. 2017's full gate recurrence) adds a_{t-1} W_gg^T to the pre-activations of
// the learned sigmoid gates, a_{t-1} (B, P*H) being those gates of step t-1 (in peephole order
// i, f, o): one more GEMM per step in forward ((B, P*H) @ (P*H, P*H), into a small buffer each
// row adds to its gates' columns of z before the fused pass, since those columns are not
// contiguous: g sits between f and o), one more in backward (dA_{t-1} = dG_t W_gg, added to the
// gates' value gradients before their sigmoid derivative), and dW_gg as one GEMM over all T*B rows.
//
// The variant travels as flags (Variant below); the pointwise code branches on them outside
// its inner loops, so each inner loop is branch-free and vectorises. Loops walk raw pointers
// (never Z[t]-style indexing of a saved tensor inside the autograd graph, which would make
// backward quadratic in T).
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

enum Act : int64_t { TANH = 0, SIGMOID = 1, IDENTITY = 2 };
enum Forget : int64_t { F_NONE = 0, F_LEARNED = 1, F_COUPLED = 2 };  // also the input gate's codes

struct Variant {
  bool has_i, has_o, peep, fgr;  // has_i: i has its own rows (learned); fgr: gate recurrence (W_gg)
  int64_t input, forget, act_g, act_h;
  double beta;  // shift of the coupled gate: 1 - sigmoid(s - beta)
  // Column offset (in units of H) of each gate's rows in z; -1 when the gate has no weights.
  int64_t col_i, col_f, col_g, col_o;
  // Row of each gate in the peephole matrix (P, H); -1 when it has none.
  int64_t peep_i, peep_f, peep_o;
  // Position (in units of H) of each learned sigmoid gate in FGR's a = [i, f, o] (the peephole
  // order, peepholes or not); -1 when the gate is not learned. n_gates = P, the number of them.
  int64_t gate_i, gate_f, gate_o, n_gates;
};

Variant make_variant(int64_t input, int64_t forget, bool has_o, int64_t act_g, int64_t act_h, double beta, bool peep,
                     bool fgr) {
  TORCH_CHECK(forget != F_COUPLED || input == F_LEARNED, "lstm_fast: coupled forget gate needs a learned input gate");
  TORCH_CHECK(input != F_COUPLED || forget == F_LEARNED, "lstm_fast: coupled input gate needs a learned forget gate");
  const bool has_i = input == F_LEARNED;
  Variant v{has_i, has_o, peep, fgr, input, forget, act_g, act_h, beta, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0};
  int64_t col = 0, gate = 0;  // rows in nn.LSTM order i, f, g, o; peepholes and a on learned sigmoid gates
  if (has_i) { v.col_i = col++; v.gate_i = gate++; }
  if (forget == F_LEARNED) { v.col_f = col++; v.gate_f = gate++; }
  v.col_g = col++;
  if (has_o) { v.col_o = col++; v.gate_o = gate++; }
  if (peep) v.peep_i = v.gate_i, v.peep_f = v.gate_f, v.peep_o = v.gate_o;
  v.n_gates = gate;
  TORCH_CHECK(!fgr || gate > 0, "lstm_fast: gate recurrence needs a learned sigmoid gate");
  return v;
}

// ---- activations --------------------------------------------------------------------------
// at::vec::Vectorized is ATen's SIMD type: 8 floats under AVX2 (fast.py passes the flags when
// the CPU has it), exp and tanh from Sleef; without those flags it is a plain scalar loop.
template <typename T> using Vec = at::vec::Vectorized<T>;

template <typename T> inline Vec<T> sigmoid(const Vec<T>& x) { return Vec<T>(1) / (Vec<T>(1) + x.neg().exp()); }

template <typename T> inline Vec<T> activate(int64_t act, const Vec<T>& x) {
  return act == TANH ? x.tanh() : act == SIGMOID ? sigmoid(x) : x;
}

// act'(pre) from the activated value y = act(pre).
template <typename T> inline Vec<T> activate_grad(int64_t act, const Vec<T>& y) {
  return act == TANH ? Vec<T>(1) - y * y : act == SIGMOID ? y * (Vec<T>(1) - y) : Vec<T>(1);
}

// The coupled gate's sigmoid(s - beta), from its partner's saved a = sigmoid(s):
// sigmoid(s - beta) = a / (a + (1 - a) e^beta); at beta = 0 it is a itself.
template <typename T> inline Vec<T> shifted(const Vec<T>& a, T e_beta) {
  return e_beta == T(1) ? a : a / (a + (Vec<T>(1) - a) * Vec<T>(e_beta));
}

// Walks a row of n elements in vector-width chunks; the last chunk may be partial (count < width).
template <typename T, typename F> inline void for_chunks(int64_t n, const F& body) {
  constexpr int64_t W = Vec<T>::size();
  int64_t j = 0;
  for (; j + W <= n; j += W) body(j, W);
  if (j < n) body(j, n - j);
}

// FGR's passes over one row's learned sigmoid gates: f(the gate's columns in z, its offset in a).
template <typename T, typename F> inline void for_gates(const Variant& v, int64_t H, T* z, const F& f) {
  if (v.gate_i >= 0) f(z + v.col_i * H, v.gate_i * H);
  if (v.gate_f >= 0) f(z + v.col_f * H, v.gate_f * H);
  if (v.gate_o >= 0) f(z + v.col_o * H, v.gate_o * H);
}

// ---- one step, one batch row: the fused pointwise pass ---------------------------------------
// The variant flags are constant over the call, so their branches inside the chunk loop are
// predicted perfectly. A missing gate reads as 1; a missing peephole row points at zeros.

// z: the row's pre-activations (G*H), overwritten by the activated gates.
// cp: c_{t-1}; c: c_t (out); h: h_t (out); a: act_h(c_t) (out, nullptr when not kept). p*: peephole rows.
// FGR (else both nullptr): r: a_{t-1} W_gg^T (P*H), added to the gates' pre-activations; gs: a_t (P*H, out).
// FGR is a template argument, and its work is passes of its own around the main one, so that the
// other cells compile to exactly the code they had before FGR existed: FGR terms inside the main
// chunk loop, even in discarded `if constexpr` branches, changed GCC's FMA contraction in the
// float64 tail chunk, and so the last bits of those cells' outputs.
template <bool FGR, typename T>
void forward_row(const Variant& v, int64_t H, T* z, const T* cp, T* c, T* h, T* a, const T* pi, const T* pf,
                 const T* po, const T* r, T* gs) {
  if constexpr (FGR)  // a_{t-1} W_gg^T joins the gates' pre-activations (the row of z stays in L1)
    for_gates(v, H, z, [&](T* zx, int64_t off) {
      for_chunks<T>(H, [&](int64_t j, int64_t k) { (Vec<T>::loadu(zx + j, k) + Vec<T>::loadu(r + off + j, k)).store(zx + j, k); });
    });
  T *zi = z + v.col_i * H, *zf = z + v.col_f * H, *zg = z + v.col_g * H, *zo = z + v.col_o * H;
  const Vec<T> one(1);
  const T e_beta = static_cast<T>(std::exp(v.beta));
  for_chunks<T>(H, [&](int64_t j, int64_t k) {
    auto ld = [&](const T* p) { return Vec<T>::loadu(p + j, k); };
    const Vec<T> c_prev = ld(cp);
    Vec<T> i = one, f = one, o = one;
    if (v.has_i) (i = sigmoid(ld(zi) + ld(pi) * c_prev)).store(zi + j, k);
    if (v.forget == F_LEARNED) (f = sigmoid(ld(zf) + ld(pf) * c_prev)).store(zf + j, k);
    if (v.forget == F_COUPLED) f = one - shifted(i, e_beta);
    if (v.input == F_COUPLED) i = one - shifted(f, e_beta);
    const Vec<T> g = activate(v.act_g, ld(zg));
    g.store(zg + j, k);
    const Vec<T> c_t = f * c_prev + i * g;
    c_t.store(c + j, k);
    if (v.has_o) (o = sigmoid(ld(zo) + ld(po) * c_t)).store(zo + j, k);
    const Vec<T> a_t = activate(v.act_h, c_t);
    if (a) a_t.store(a + j, k);
    (o * a_t).store(h + j, k);
  });
  if constexpr (FGR)  // a_t: the learned gates' activated values, now in z (a coupled gate is not in a)
    for_gates(v, H, z, [&](T* zx, int64_t off) { std::memcpy(gs + off, zx, H * sizeof(T)); });
}

// z: the row's activated gates (saved by forward); dz: their pre-activation gradients (out).
// a: act_h(c_t) as forward kept it (nullptr: act_h is the identity, a = c_t).
// go: dL/dh_t from the layer output (nullptr if none); dh_rec: dL/dh_t through h_{t+1};
// dc: dL/dc_t through c_{t+1} on entry, dL/dc_{t-1} on exit. gp*: peephole grads of this step
// (+=, nullptr when the gate has no peephole).
// FGR (else both nullptr): da: dL/da_t (P*H) through step t+1's gates (or the returned a_T); dg: the
// learned sigmoid gates' pre-activation gradients in a's order (P*H, out), for dA_{t-1} and dW_gg.
template <bool FGR, typename T>
void backward_row(const Variant& v, int64_t H, const T* z, T* dz, const T* cp, const T* c, const T* ap, const T* go,
                  const T* dh_rec, T* dc, const T* pi, const T* pf, const T* po, T* gpi, T* gpf, T* gpo,
                  const T* da, T* dg) {
  const T *zi = z + v.col_i * H, *zf = z + v.col_f * H, *zg = z + v.col_g * H, *zo = z + v.col_o * H;
  T *dzi = dz + v.col_i * H, *dzf = dz + v.col_f * H, *dzg = dz + v.col_g * H, *dzo = dz + v.col_o * H;
  const Vec<T> one(1), zero(0);
  const T e_beta = static_cast<T>(std::exp(v.beta));
  for_chunks<T>(H, [&](int64_t j, int64_t k) {
    auto ld = [&](const T* p) { return Vec<T>::loadu(p + j, k); };
    auto add_to = [&](T* p, const Vec<T>& x) { (ld(p) + x).store(p + j, k); };
    const Vec<T> c_prev = ld(cp), c_t = ld(c), g = ld(zg);
    const Vec<T> o = v.has_o ? ld(zo) : one;
    // u: sigmoid(s - beta) of the coupled gate's partner; the coupled gate is 1 - u.
    const Vec<T> u = v.forget == F_COUPLED ? shifted(ld(zi), e_beta) : v.input == F_COUPLED ? shifted(ld(zf), e_beta) : zero;
    const Vec<T> i = v.has_i ? ld(zi) : v.input == F_COUPLED ? one - u : one;
    const Vec<T> f = v.forget == F_LEARNED ? ld(zf) : v.forget == F_COUPLED ? one - u : one;
    const Vec<T> dh = go ? ld(go) + ld(dh_rec) : ld(dh_rec);
    // h = o * a(c_t), o = sigmoid(. + p_o * c_t); a(c_t) was kept by forward (tanh is the
    // costliest function of the step: recomputing it here cost about a tenth of the layer's time)
    const Vec<T> a = ap ? ld(ap) : c_t;
    Vec<T> dc_t = ld(dc) + dh * o * activate_grad(v.act_h, a), dzo_ = zero;
    if (v.has_o) {
      dzo_ = dh * a * o * (one - o);
      if constexpr (FGR) {  // what step t+1's gates read of o_t, through its sigmoid
        dzo_ = dzo_ + ld(da + v.gate_o * H) * o * (one - o);
        dzo_.store(dg + v.gate_o * H + j, k);
      }
      dzo_.store(dzo + j, k);
      dc_t = dc_t + dzo_ * ld(po);
      if (gpo) add_to(gpo, dzo_ * c_t);
    }
    // c_t = f * c_{t-1} + i * g; i, f = sigmoid(. + p * c_{t-1}); coupled: f = 1 - i
    (dc_t * i * activate_grad(v.act_g, g)).store(dzg + j, k);
    Vec<T> dc_prev = dc_t * f;
    // d(1 - u)/ds = -u (1 - u): the coupled gate's share of its partner's pre-activation gradient
    // (FGR's a holds only the learned partner, so only its own value gets dA)
    if (v.has_i) {
      Vec<T> dzi_ = dc_t * g * i * (one - i);
      if (v.forget == F_COUPLED) dzi_ = dzi_ - dc_t * c_prev * u * (one - u);
      if constexpr (FGR) {
        dzi_ = dzi_ + ld(da + v.gate_i * H) * i * (one - i);
        dzi_.store(dg + v.gate_i * H + j, k);
      }
      dzi_.store(dzi + j, k);
      dc_prev = dc_prev + dzi_ * ld(pi);
      if (gpi) add_to(gpi, dzi_ * c_prev);
    }
    if (v.forget == F_LEARNED) {
      Vec<T> dzf_ = dc_t * c_prev * f * (one - f);
      if (v.input == F_COUPLED) dzf_ = dzf_ - dc_t * g * u * (one - u);
      if constexpr (FGR) {
        dzf_ = dzf_ + ld(da + v.gate_f * H) * f * (one - f);
        dzf_.store(dg + v.gate_f * H + j, k);
      }
      dzf_.store(dzf + j, k);
      dc_prev = dc_prev + dzf_ * ld(pf);
      if (gpf) add_to(gpf, dzf_ * c_prev);
    }
    dc_prev.store(dc + j, k);
  });
}

// Rows per parallel task: a step's pointwise pass is split across threads only when each
// share is big enough (~4k elements) to pay for waking the other thread.
int64_t rows_per_task(int64_t H) { return std::max<int64_t>(1, 4096 / H); }

at::Tensor peephole_row(const c10::optional<at::Tensor>& peephole, int64_t row, const at::Tensor& zeros) {
  return row >= 0 ? peephole->select(0, row) : zeros;
}

}  // namespace

// x (B, T, I); h0, c0 (B, H); w_ih (G*H, I); w_hh (R*H, H); bias (G*H,); peephole (P, H) or None;
// FGR: w_gg (P*H, P*H) and a0 (B, P*H) = a_0, else both None (P: the learned sigmoid gates).
// w_hh's R gate rows add to the R*H columns of z from rec_col * H on: all G gates, or (gates_read:
// input) only the candidate's.
// Returns out (B, T, H), h_T, c_T (B, H), a_T (B, P*H; None without FGR) and, when save,
// Z (T, B, G*H) activated gates, C (T, B, H) cell states, A (T, B, H) act_h(c_t) (empty when act_h
// is the identity), Hs (T + 1, B, H) = h_0 .. h_T and Gs (T + 1, B, P*H) = a_0 .. a_T (None without
// FGR), both time-major, for backward.
std::vector<at::Tensor> lstm_forward(const at::Tensor& x, const at::Tensor& h0_, const at::Tensor& c0_,
                                     const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& bias,
                                     const c10::optional<at::Tensor>& peephole, const c10::optional<at::Tensor>& w_gg,
                                     const c10::optional<at::Tensor>& a0, int64_t input, int64_t forget,
                                     bool has_o, int64_t act_g, int64_t act_h, double beta, int64_t rec_col,
                                     bool save) {
  const Variant v = make_variant(input, forget, has_o, act_g, act_h, beta, peephole.has_value(), w_gg.has_value());
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = w_hh.size(1), GH = w_ih.size(0);
  const int64_t PH = v.n_gates * H;
  TORCH_CHECK(T >= 1, "lstm_fast: need at least one time step");
  TORCH_CHECK(GH == (v.has_i + (v.forget == F_LEARNED) + 1 + v.has_o) * H, "lstm_fast: weight rows do not match the variant");
  TORCH_CHECK(w_hh.size(0) > 0 && rec_col * H + w_hh.size(0) <= GH, "lstm_fast: recurrent rows outside the gates");
  TORCH_CHECK(!v.fgr || (a0.has_value() && w_gg->size(0) == PH && w_gg->size(1) == PH && a0->size(0) == B &&
                         a0->size(1) == PH), "lstm_fast: w_gg must be (P*H, P*H) and a0 (B, P*H)");
  at::Tensor h0 = h0_.contiguous(), c0 = c0_.contiguous();
  at::Tensor x_tm = x.transpose(0, 1).contiguous().view({T * B, I});
  at::Tensor Z = at::addmm(bias, x_tm, w_ih.t()).view({T, B, GH});  // x_t W_ih^T + b for all t
  // h_t goes to a time-major buffer: the next step's GEMM reads h_t as one contiguous (B, H) block
  // (a row of `out` is T*H apart), and backward's dW_hh reads h_0 .. h_{T-1} as one (T*B, H)
  // matrix without a copy. `out` is one transposing copy of it at the end.
  at::Tensor Hs = at::empty({T + 1, B, H}, x.options());
  Hs[0].copy_(h0);
  at::Tensor C = at::empty({save ? T : 2, B, H}, x.options());  // no grad: ping-pong c_t
  const bool keep_a = save && v.act_h != IDENTITY;
  at::Tensor A = at::empty({keep_a ? T : 0, B, H}, x.options());
  at::Tensor w_hh_t = w_hh.t();
  at::Tensor zeros = at::zeros({H}, x.options());
  // FGR: a_t goes to a time-major buffer as h_t does (one GEMM operand per step; backward's dW_gg
  // reads a_0 .. a_{T-1} as one (T*B, P*H) matrix); R = a_{t-1} W_gg^T, which the pointwise pass
  // adds to the gates' pre-activations. No grad: ping-pong a_t.
  at::Tensor Gs, R;
  if (v.fgr) {
    Gs = at::empty({save ? T + 1 : 2, B, PH}, x.options());
    Gs[0].copy_(*a0);
    R = at::empty({B, PH}, x.options());
  }

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_fast_forward", [&] {
    at::Tensor pi_t = peephole_row(peephole, v.peep_i, zeros), pf_t = peephole_row(peephole, v.peep_f, zeros),
               po_t = peephole_row(peephole, v.peep_o, zeros);
    const scalar_t *pi = pi_t.data_ptr<scalar_t>(), *pf = pf_t.data_ptr<scalar_t>(), *po = po_t.data_ptr<scalar_t>();
    std::vector<at::Tensor> z_steps = Z.unbind(0), h_steps = Hs.unbind(0);  // views, made once
    scalar_t* Hs_p = Hs.data_ptr<scalar_t>();
    scalar_t* C_p = C.data_ptr<scalar_t>();
    scalar_t* A_p = keep_a ? A.data_ptr<scalar_t>() : nullptr;
    std::vector<at::Tensor> g_steps = v.fgr ? Gs.unbind(0) : std::vector<at::Tensor>();
    at::Tensor w_gg_t = v.fgr ? w_gg->t() : at::Tensor();
    scalar_t* Gs_p = v.fgr ? Gs.data_ptr<scalar_t>() : nullptr;
    const scalar_t* R_p = v.fgr ? R.data_ptr<scalar_t>() : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      // z_t = x_t W_ih^T + b + h_{t-1} W_hh^T, on the columns that read h
      z_steps[t].narrow(1, rec_col * H, w_hh.size(0)).addmm_(h_steps[t], w_hh_t);
      if (v.fgr) at::mm_out(R, g_steps[save ? t : t % 2], w_gg_t);  // a_{t-1} W_gg^T
      scalar_t* z = z_steps[t].data_ptr<scalar_t>();
      const scalar_t* cp = t == 0 ? c0.data_ptr<scalar_t>() : C_p + (save ? t - 1 : (t - 1) % 2) * B * H;
      scalar_t* c = C_p + (save ? t : t % 2) * B * H;
      scalar_t* a = keep_a ? A_p + t * B * H : nullptr;
      scalar_t* gs = v.fgr ? Gs_p + (save ? t + 1 : (t + 1) % 2) * B * PH : nullptr;
      at::parallel_for(0, B, rows_per_task(H), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          scalar_t *zb = z + b * GH, *cb = c + b * H, *hb = Hs_p + ((t + 1) * B + b) * H, *ab = a ? a + b * H : nullptr;
          if (v.fgr)
            forward_row<true>(v, H, zb, cp + b * H, cb, hb, ab, pi, pf, po, R_p + b * PH, gs + b * PH);
          else
            forward_row<false>(v, H, zb, cp + b * H, cb, hb, ab, pi, pf, po, R_p, gs);
        }
      });
    }
  });
  at::Tensor out = Hs.narrow(0, 1, T).transpose(0, 1).contiguous();
  at::Tensor h_T = Hs[T].clone(), c_T = C[save ? T - 1 : (T - 1) % 2].clone();
  at::Tensor a_T = v.fgr ? Gs[save ? T : T % 2].clone() : at::Tensor();
  if (!save) return {out, h_T, c_T, a_T};
  return {out, h_T, c_T, a_T, Z, C, A, Hs, Gs};
}

// Gradients of lstm_forward. grad_out (B, T, H), grad_h_T, grad_c_T (B, H), grad_a_T (B, P*H): any
// may be None. w_gg and Gs: FGR's, as forward took and saved them (else None).
// Returns dx (B, T, I) (undefined unless need_dx), dh0, dc0, dW_ih, dW_hh, db, dpeephole and, under
// FGR, da0 and dW_gg (else undefined).
std::vector<at::Tensor> lstm_backward(const c10::optional<at::Tensor>& grad_out_,
                                      const c10::optional<at::Tensor>& grad_h_T,
                                      const c10::optional<at::Tensor>& grad_c_T,
                                      const c10::optional<at::Tensor>& grad_a_T, const at::Tensor& x,
                                      const at::Tensor& c0_, const at::Tensor& w_ih,
                                      const at::Tensor& w_hh, const c10::optional<at::Tensor>& peephole,
                                      const c10::optional<at::Tensor>& w_gg,
                                      const at::Tensor& Z, const at::Tensor& C, const at::Tensor& A,
                                      const at::Tensor& Hs, const c10::optional<at::Tensor>& Gs,
                                      int64_t input, int64_t forget, bool has_o, int64_t act_g, int64_t act_h,
                                      double beta, int64_t rec_col, bool need_dx) {
  const Variant v = make_variant(input, forget, has_o, act_g, act_h, beta, peephole.has_value(), w_gg.has_value());
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = w_hh.size(1), GH = w_ih.size(0), RH = w_hh.size(0);
  const int64_t PH = v.n_gates * H;
  TORCH_CHECK(!v.fgr || (Gs.has_value() && Gs->size(0) == T + 1), "lstm_fast: FGR's backward needs a_0 .. a_T");
  at::Tensor c0 = c0_.contiguous();  // h_0 is Hs[0]: backward needs no h0 argument
  // Rows of grad_out are read in place when their inner stride is 1; otherwise (y.sum() gives an
  // expanded one) each step's (B, H) slice is copied into go_step, never the whole (B, T, H).
  at::Tensor grad_out = grad_out_.has_value() ? *grad_out_ : at::Tensor();
  const bool go_rows = grad_out.defined() && grad_out.stride(2) == 1;
  at::Tensor go_step = grad_out.defined() && !go_rows ? at::empty({B, H}, x.options()) : at::Tensor();
  at::Tensor dh_rec = grad_h_T.has_value() ? grad_h_T->contiguous().clone() : at::zeros({B, H}, x.options());
  at::Tensor dc = grad_c_T.has_value() ? grad_c_T->contiguous().clone() : at::zeros({B, H}, x.options());
  at::Tensor dZ = at::empty({T, B, GH}, x.options());
  at::Tensor zeros = at::zeros({H}, x.options());
  at::Tensor dpeep;
  // FGR: dA = dL/da_t through step t+1's gates (dA_{t} = dG_{t+1} W_gg; da_T = grad_a_T), and dGs
  // (T, B, P*H) the gates' pre-activation gradients in a's order, time-major for dW_gg's GEMM.
  at::Tensor dA, dGs;
  if (v.fgr) {
    dA = grad_a_T.has_value() ? grad_a_T->contiguous().clone() : at::zeros({B, PH}, x.options());
    dGs = at::empty({T, B, PH}, x.options());
  }

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_fast_backward", [&] {
    at::Tensor pi_t = peephole_row(peephole, v.peep_i, zeros), pf_t = peephole_row(peephole, v.peep_f, zeros),
               po_t = peephole_row(peephole, v.peep_o, zeros);
    const scalar_t *pi = pi_t.data_ptr<scalar_t>(), *pf = pf_t.data_ptr<scalar_t>(), *po = po_t.data_ptr<scalar_t>();
    const int64_t P = peephole.has_value() ? peephole->size(0) : 0;
    // Peephole grads sum T*B terms per unit: within a step each thread sums its rows in scalar_t
    // (its own slice, no races), the steps add up in double.
    const int64_t n_threads = at::get_num_threads();
    std::vector<scalar_t> step_acc(n_threads * P * H);
    std::vector<double> acc(P * H, 0.0);
    auto peep_grad = [&](int64_t row) { return row >= 0 ? step_acc.data() + at::get_thread_num() * P * H + row * H : nullptr; };
    std::vector<at::Tensor> dz_steps = dZ.unbind(0);
    const scalar_t* Z_p = Z.data_ptr<scalar_t>();
    const scalar_t* C_p = C.data_ptr<scalar_t>();
    const scalar_t* A_p = A.numel() ? A.data_ptr<scalar_t>() : nullptr;
    scalar_t* dc_p = dc.data_ptr<scalar_t>();
    scalar_t* dh_p = dh_rec.data_ptr<scalar_t>();
    std::vector<at::Tensor> dg_steps = v.fgr ? dGs.unbind(0) : std::vector<at::Tensor>();
    const scalar_t* dA_p = v.fgr ? dA.data_ptr<scalar_t>() : nullptr;
    scalar_t* dGs_p = v.fgr ? dGs.data_ptr<scalar_t>() : nullptr;
    for (int64_t t = T - 1; t >= 0; --t) {
      const scalar_t* z = Z_p + t * B * GH;
      const scalar_t* c = C_p + t * B * H;
      const scalar_t* a = A_p ? A_p + t * B * H : nullptr;
      const scalar_t* cp = t == 0 ? c0.data_ptr<scalar_t>() : C_p + (t - 1) * B * H;
      scalar_t* dz = dz_steps[t].data_ptr<scalar_t>();
      const scalar_t* go = nullptr;  // dL/dh_t from the output, row b at go + b * go_sb
      int64_t go_sb = H;
      if (go_rows) {
        go = grad_out.data_ptr<scalar_t>() + t * grad_out.stride(1);
        go_sb = grad_out.stride(0);
      } else if (grad_out.defined()) {
        go = go_step.copy_(grad_out.select(1, t)).data_ptr<scalar_t>();
      }
      if (P) std::fill(step_acc.begin(), step_acc.end(), scalar_t(0));
      scalar_t* dg = dGs_p ? dGs_p + t * B * PH : nullptr;
      at::parallel_for(0, B, rows_per_task(H), [&](int64_t b0, int64_t b1) {
        scalar_t *gpi = peep_grad(v.peep_i), *gpf = peep_grad(v.peep_f), *gpo = peep_grad(v.peep_o);
        for (int64_t b = b0; b < b1; ++b) {
          const scalar_t *zb = z + b * GH, *ab = a ? a + b * H : nullptr, *gob = go ? go + b * go_sb : nullptr;
          if (v.fgr)
            backward_row<true>(v, H, zb, dz + b * GH, cp + b * H, c + b * H, ab, gob, dh_p + b * H, dc_p + b * H,
                               pi, pf, po, gpi, gpf, gpo, dA_p + b * PH, dg + b * PH);
          else
            backward_row<false>(v, H, zb, dz + b * GH, cp + b * H, c + b * H, ab, gob, dh_p + b * H, dc_p + b * H,
                                pi, pf, po, gpi, gpf, gpo, dA_p, dg);
        }
      });
      for (int64_t n = 0; n < n_threads; ++n)
        for (int64_t k = 0; k < P * H; ++k) acc[k] += step_acc[n * P * H + k];
      at::mm_out(dh_rec, dz_steps[t].narrow(1, rec_col * H, RH), w_hh);  // dL/dh_{t-1} through z_t
      if (v.fgr) at::mm_out(dA, dg_steps[t], *w_gg);  // dL/da_{t-1} through z_t; at t = 0: da0
    }
    if (P) dpeep = at::from_blob(acc.data(), {P, H}, at::kDouble).to(x.scalar_type(), false, /*copy=*/true);
  });
  // Weight, bias and input gradients: one GEMM or reduction each over all T*B rows.
  at::Tensor dZ2 = dZ.view({T * B, GH});
  at::Tensor h_prev = Hs.narrow(0, 0, T).view({T * B, H});  // h_0 .. h_{T-1}, time-major like dZ
  at::Tensor x_tm = x.transpose(0, 1).contiguous().view({T * B, I});
  at::Tensor dw_hh = dZ2.narrow(1, rec_col * H, RH).t().mm(h_prev);
  // dW_ih as (x^T dZ)^T: MKL's dZ^T x with a narrow x (I = 2: N = 2 columns) ran 4-9x slower than
  // x^T dZ (at H = 64, I = 2: 2.7 ms against 0.3 ms, as long as the dW_hh product itself)
  at::Tensor dw_ih = x_tm.t().mm(dZ2).t().contiguous();
  at::Tensor db = dZ2.sum(0);
  at::Tensor dx = need_dx ? dZ2.mm(w_ih).view({T, B, I}).transpose(0, 1) : at::Tensor();
  // dW_gg = sum_t dG_t^T a_{t-1}: one GEMM over all T*B rows of dGs against a_0 .. a_{T-1}
  at::Tensor dw_gg = v.fgr ? dGs.view({T * B, PH}).t().mm(Gs->narrow(0, 0, T).view({T * B, PH})) : at::Tensor();
  return {dx, dh_rec, dc, dw_ih, dw_hh, db, dpeep, dA, dw_gg};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &lstm_forward, "variant LSTM layer, forward");
  m.def("backward", &lstm_backward, "variant LSTM layer, backward");
}
