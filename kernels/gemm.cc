// cuBLASLt GEMM: row-major y[M,N] = x[M,K]·w[N,K]ᵀ computed as the column-major product
// yᵀ[N,M] = (w as K×N)ᵀ · (x as K×M), bf16 inputs, fp32 compute, bias / GELU-tanh epilogues.
// libcublasLt is opened with dlopen on first use instead of being linked: its ~94 KB of static
// TLS would otherwise be reserved in every thread of every process that links the engine, and
// civetweb's 100 KB worker stacks then fail to start (EINVAL) in turbovid-worker.
#include "kernels/gemm.h"

#include <cublasLt.h>
#include <dlfcn.h>

#include <cstring>
#include <mutex>
#include <string>

namespace turbovid::kernels {
namespace {

struct LtApi {
  decltype(&::cublasLtCreate) cublasLtCreate = nullptr;
  decltype(&::cublasLtDestroy) cublasLtDestroy = nullptr;
  decltype(&::cublasLtMatmul) cublasLtMatmul = nullptr;
  decltype(&::cublasLtMatmulAlgoGetHeuristic) cublasLtMatmulAlgoGetHeuristic = nullptr;
  decltype(&::cublasLtMatmulDescCreate) cublasLtMatmulDescCreate = nullptr;
  decltype(&::cublasLtMatmulDescDestroy) cublasLtMatmulDescDestroy = nullptr;
  decltype(&::cublasLtMatmulDescSetAttribute) cublasLtMatmulDescSetAttribute = nullptr;
  decltype(&::cublasLtMatmulPreferenceCreate) cublasLtMatmulPreferenceCreate = nullptr;
  decltype(&::cublasLtMatmulPreferenceDestroy) cublasLtMatmulPreferenceDestroy = nullptr;
  decltype(&::cublasLtMatmulPreferenceSetAttribute) cublasLtMatmulPreferenceSetAttribute = nullptr;
  decltype(&::cublasLtMatrixLayoutCreate) cublasLtMatrixLayoutCreate = nullptr;
  decltype(&::cublasLtMatrixLayoutDestroy) cublasLtMatrixLayoutDestroy = nullptr;
  bool loaded = false;
  std::string error;
};

template <typename F>
bool Sym(void* h, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(h, name));
  return *out != nullptr;
}

const LtApi& Lt() {
  static LtApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string lib = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = dlerror();
      api.error = lib + ": " + (e ? e : "dlopen failed");
      return;
    }
    bool ok = true;
    ok = ok && Sym(h, "cublasLtCreate", &api.cublasLtCreate);
    ok = ok && Sym(h, "cublasLtDestroy", &api.cublasLtDestroy);
    ok = ok && Sym(h, "cublasLtMatmul", &api.cublasLtMatmul);
    ok = ok && Sym(h, "cublasLtMatmulAlgoGetHeuristic", &api.cublasLtMatmulAlgoGetHeuristic);
    ok = ok && Sym(h, "cublasLtMatmulDescCreate", &api.cublasLtMatmulDescCreate);
    ok = ok && Sym(h, "cublasLtMatmulDescDestroy", &api.cublasLtMatmulDescDestroy);
    ok = ok && Sym(h, "cublasLtMatmulDescSetAttribute", &api.cublasLtMatmulDescSetAttribute);
    ok = ok && Sym(h, "cublasLtMatmulPreferenceCreate", &api.cublasLtMatmulPreferenceCreate);
    ok = ok && Sym(h, "cublasLtMatmulPreferenceDestroy", &api.cublasLtMatmulPreferenceDestroy);
    ok = ok && Sym(h, "cublasLtMatmulPreferenceSetAttribute", &api.cublasLtMatmulPreferenceSetAttribute);
    ok = ok && Sym(h, "cublasLtMatrixLayoutCreate", &api.cublasLtMatrixLayoutCreate);
    ok = ok && Sym(h, "cublasLtMatrixLayoutDestroy", &api.cublasLtMatrixLayoutDestroy);
    if (!ok) {
      api.error = lib + ": missing symbols";
      return;
    }
    api.loaded = true;
  });
  return api;
}


cudaDataType_t CudaType(ElemType t) {
  switch (t) {
    case ElemType::kF32:
      return CUDA_R_32F;
    case ElemType::kBF16:
      return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

// Releases cuBLASLt descriptors on every return path.
struct Descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Descs() {
    if (pref) Lt().cublasLtMatmulPreferenceDestroy(pref);
    if (c) Lt().cublasLtMatrixLayoutDestroy(c);
    if (b) Lt().cublasLtMatrixLayoutDestroy(b);
    if (a) Lt().cublasLtMatrixLayoutDestroy(a);
    if (op) Lt().cublasLtMatmulDescDestroy(op);
  }
};

#define TV_LT(expr)                                      \
  do {                                                   \
    cublasStatus_t tv_st_ = (expr);                      \
    if (tv_st_ != CUBLAS_STATUS_SUCCESS) return tv_st_;  \
  } while (0)

// What both GEMMs (bf16 and FP8) describe alike: y[m, n] = x[m, k]·w[n, k]ᵀ, in cuBLASLt's
// column-major terms D[n, m] = Wᵀ·X with W and X both k-major (the TN layout FP8 requires), fp32
// compute, inputs of type `in`, output `out`, and the workspace preference. cuBLAS status.
int MakeTnDescs(Descs& d, cudaDataType_t in, cudaDataType_t out, int64_t m, int64_t n,
                int64_t k) {
  TV_LT(Lt().cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  TV_LT(Lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  TV_LT(Lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  const auto um = static_cast<uint64_t>(m), un = static_cast<uint64_t>(n),
             uk = static_cast<uint64_t>(k);
  TV_LT(Lt().cublasLtMatrixLayoutCreate(&d.a, in, uk, un, k));   // w
  TV_LT(Lt().cublasLtMatrixLayoutCreate(&d.b, in, uk, um, k));   // x
  TV_LT(Lt().cublasLtMatrixLayoutCreate(&d.c, out, un, um, n));  // y
  TV_LT(Lt().cublasLtMatmulPreferenceCreate(&d.pref));
  const size_t ws = GemmContext::kWorkspaceBytes;
  TV_LT(Lt().cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                  &ws, sizeof(ws)));
  return CUBLAS_STATUS_SUCCESS;
}

// The plan for `key` (cuBLASLt's heuristic, cached in ctx) and the product itself, queued on
// `stream`. CUBLAS_STATUS_NOT_SUPPORTED when cuBLASLt has no algorithm for the descriptors.
int PlanAndRun(const GemmContext& ctx, const Descs& d, const GemmContext::AlgoKey& key,
               const void* w, const void* x, void* y, cudaStream_t stream) {
  static_assert(sizeof(cublasLtMatmulAlgo_t) == sizeof(GemmContext::AlgoBytes));
  auto handle = static_cast<cublasLtHandle_t>(ctx.handle());
  cublasLtMatmulAlgo_t algo;
  GemmContext::AlgoBytes bytes;
  if (ctx.FindAlgo(key, &bytes)) {
    std::memcpy(&algo, &bytes, sizeof(algo));
  } else {
    cublasLtMatmulHeuristicResult_t heur{};
    int found = 0;
    const cublasStatus_t st = Lt().cublasLtMatmulAlgoGetHeuristic(handle, d.op, d.a, d.b, d.c, d.c,
                                                                  d.pref, 1, &heur, &found);
    if (st == CUBLAS_STATUS_NOT_SUPPORTED || (st == CUBLAS_STATUS_SUCCESS && found == 0)) {
      return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    TV_LT(st);
    algo = heur.algo;
    std::memcpy(&bytes, &algo, sizeof(algo));
    ctx.StoreAlgo(key, bytes);
  }
  const float alpha = 1.f, beta = 0.f;
  TV_LT(Lt().cublasLtMatmul(handle, d.op, &alpha, w, d.a, x, d.b, &beta, y, d.c, y, d.c, &algo,
                            ctx.workspace(), GemmContext::kWorkspaceBytes, stream));
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

GemmContext::~GemmContext() {
  if (workspace_) cudaFree(workspace_);
  if (handle_ && Lt().loaded) Lt().cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

std::string GemmLoadError() { return Lt().error; }

int GemmContext::Init() {
  if (!Lt().loaded) return CUBLAS_STATUS_NOT_INITIALIZED;
  cublasLtHandle_t h = nullptr;
  TV_LT(Lt().cublasLtCreate(&h));
  handle_ = h;
  cudaError_t e = cudaMalloc(&workspace_, kWorkspaceBytes);
  if (e != cudaSuccess) {
    workspace_ = nullptr;
    return -static_cast<int>(e);
  }
  return 0;
}

bool GemmContext::FindAlgo(const AlgoKey& key, AlgoBytes* algo) const {
  std::lock_guard<std::mutex> lock(algo_mu_);
  auto it = algos_.find(key);
  if (it == algos_.end()) return false;
  *algo = it->second;
  return true;
}

void GemmContext::StoreAlgo(const AlgoKey& key, const AlgoBytes& algo) const {
  std::lock_guard<std::mutex> lock(algo_mu_);
  algos_[key] = algo;
}

int LaunchGemm(const GemmContext& ctx, const GemmArgs& args, cudaStream_t stream) {
  if (args.m < 0 || args.n <= 0 || args.k <= 0 || ctx.handle() == nullptr) {
    return -static_cast<int>(cudaErrorInvalidValue);
  }
  if (args.m == 0) return 0;
  // Fused epilogue when the bias already has y's type and the activation is one cuBLASLt has
  // (GELU in cuBLASLt is the tanh approximation); otherwise a separate bias+act pass.
  const bool fuse_bias = args.bias.data == nullptr || args.bias.type == args.y.type;
  const bool fuse_act = args.act == UnaryFn::kIdentity || args.act == UnaryFn::kGeluTanh;
  const bool fused = fuse_bias && fuse_act;
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  if (fused) {
    if (args.bias.data && args.act == UnaryFn::kGeluTanh) epi = CUBLASLT_EPILOGUE_GELU_BIAS;
    else if (args.bias.data) epi = CUBLASLT_EPILOGUE_BIAS;
    else if (args.act == UnaryFn::kGeluTanh) epi = CUBLASLT_EPILOGUE_GELU;
  }
  Descs d;
  if (const int st = MakeTnDescs(d, CUDA_R_16BF, CudaType(args.y.type), args.m, args.n, args.k);
      st != CUBLAS_STATUS_SUCCESS) {
    return st;
  }
  TV_LT(Lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  if (fused && args.bias.data) {
    const void* bias = args.bias.data;
    TV_LT(Lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
  // The bias pointer's alignment can change the algorithm's validity; key on its 16-byte alignment.
  const int bias_align = args.bias.data ? (reinterpret_cast<uintptr_t>(args.bias.data) % 16 == 0 ? 1 : 2) : 0;
  const GemmContext::AlgoKey key{args.m, args.n, args.k, static_cast<int>(epi) * 4 + bias_align,
                                 static_cast<int>(args.y.type)};
  if (const int st = PlanAndRun(ctx, d, key, args.w, args.x, args.y.data, stream);
      st != CUBLAS_STATUS_SUCCESS) {
    return st;
  }
  if (!fused) {
    BiasActArgs ba;
    ba.y = args.y;
    ba.bias = args.bias;
    ba.fn = args.act;
    ba.rows = args.m;
    ba.cols = args.n;
    cudaError_t e = LaunchBiasAct(ba, stream);
    if (e != cudaSuccess) return -static_cast<int>(e);
  }
  return 0;
}

static_assert(kGemmNotSupported == CUBLAS_STATUS_NOT_SUPPORTED);

int LaunchGemmFp8(const GemmContext& ctx, const GemmFp8Args& args, cudaStream_t stream) {
  if (args.m < 0 || args.n <= 0 || args.k <= 0 || args.k % 16 != 0 || ctx.handle() == nullptr) {
    return -static_cast<int>(cudaErrorInvalidValue);
  }
  if (args.outer_vec && (args.x_scale == nullptr || args.w_scale == nullptr)) {
    return -static_cast<int>(cudaErrorInvalidValue);
  }
  if (!args.outer_vec && args.y.type != ElemType::kF32) return -static_cast<int>(cudaErrorInvalidValue);
  if (args.m == 0) return 0;
  Descs d;
  if (const int st = MakeTnDescs(d, CUDA_R_8F_E4M3, CudaType(args.y.type), args.m, args.n, args.k);
      st != CUBLAS_STATUS_SUCCESS) {
    return st;
  }
  const int8_t fast = args.fast_accum ? 1 : 0;
  TV_LT(Lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast)));
  if (args.outer_vec) {
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;  // the attribute is an int32_t
    TV_LT(Lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof(mode)));
    TV_LT(Lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof(mode)));
    const void* a_scale = args.w_scale;
    const void* b_scale = args.x_scale;
    TV_LT(Lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_scale,
                                              sizeof(a_scale)));
    TV_LT(Lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b_scale,
                                              sizeof(b_scale)));
  }
  // Keyed apart from the bf16 GEMM's plans by a negative epilogue field: -1 - (outer_vec, fast).
  const GemmContext::AlgoKey key{args.m, args.n, args.k,
                                 -1 - ((args.outer_vec ? 1 : 0) | (args.fast_accum ? 2 : 0)),
                                 static_cast<int>(args.y.type)};
  // kGemmNotSupported (= CUBLAS_STATUS_NOT_SUPPORTED) when cuBLASLt has no algorithm for them.
  if (const int st = PlanAndRun(ctx, d, key, args.w, args.x, args.y.data, stream);
      st != CUBLAS_STATUS_SUCCESS) {
    return st;
  }
  return 0;
}

}  // namespace turbovid::kernels
