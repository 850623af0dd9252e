// The thread team of conv_forward (included once by xnor_kernel.cc, inside its anonymous
// namespace; not a public header). Needs <atomic>, <chrono>, <condition_variable>, <memory>,
// <mutex>, <thread>, <type_traits>, <pthread.h>: included by xnor_kernel.cc outside the
// namespaces.
//
// Why not an OpenMP parallel region: under MXNet's default (threaded) engine the op runs in an
// engine worker whose OpenMP team is one of several in the process (MXNet's other engine
// threads and the calling thread have their own), and libgomp then counts more threads than
// CPUs and lets its idle team members spin only about 100 iterations before they sleep. Every
// call then waits for its helpers to be woken. Measured on a 2-vCPU VM with a stand-alone
// harness of that pattern (a worker thread woken per call, 2 x 85 us of work): 200 us per call
// with a throttled libgomp team, 98 us without the extra team, 97-102 us with this team; in
// MXNet, the op at 256 channels, batch 1, 2 threads took 0.43 ms on the default engine against
// 0.22 ms under NaiveEngine.
//
// The team: helper threads, made on first use (OMP_NUM_THREADS / omp_get_max_threads() of the
// calling thread sets the most members, as for the OpenMP region before), wait for a job by
// spinning for kSpinPauseUs (pause instructions), then yielding the CPU to anything runnable
// until kSpinYieldUs, then sleeping on a condition variable.
//
// Work stealing. The caller starts at once, and a helper joins whenever it gets a CPU, until
// the caller has finished. Every loop of the job (for_share) is split statically into one
// contiguous share per member id (as OpenMP's schedule(static)); a member takes the items of
// its own share from the front, then takes the remaining items of the other shares from
// their backs. So a helper that is asleep, late, or whose CPU is held by another thread (on a
// 2-vCPU machine: oneDNN's OpenMP worker spinning after its convolution) costs the call
// nothing but the items it has started (the caller waits for those), and one that comes late
// still takes part of a long call. Member::sync() waits until every item of the loops before
// it is done. Measured on a 2-vCPU VM (256 channels, 2 threads, the op alternating with
// oneDNN in blocks of 5 calls, batch 8): 2.9 ms per call under NaiveEngine and 3.6 ms on the
// default engine when a call's members were the helpers that joined within 20 us (the scheme
// before this one: the helper mostly came too late and the call ran alone, 2.4 ms on 1
// thread); 1.3-2.1 ms on the default engine with stealing. Under NaiveEngine oneDNN's
// OpenMP worker spins for milliseconds after each of its convolutions and holds the second
// vCPU, so there the op runs at about its 1-thread speed whatever the scheme.
//
// One job at a time: a call that finds the team busy (two MXNet workers, or threads of the
// caller) runs alone on its own thread. A child of fork() starts a team of its own
// (pthread_atfork).
#ifndef MXCOMPRESS_XNOR_TEAM_H_
#define MXCOMPRESS_XNOR_TEAM_H_

constexpr uint64_t kJoinSealed = uint64_t{1} << 31, kJoinCount = kJoinSealed - 1;
constexpr double kSpinPauseUs = 50;    // helpers: pause-spin this long after a job ...
constexpr double kSpinYieldUs = 300;   // ... then yield-spin until this, then sleep
constexpr int kMaxLoops = 8;           // for_share loops per job
constexpr int64_t kMaxUnits = (int64_t{1} << 31) - 1;  // a share's bounds are 32-bit

class Team;

// Waits until ready() is true: pause-spins for kWaitPauseUs, then yields the CPU between
// checks, so that a member that waits for another on the same CPU (more threads than CPUs, or
// a CPU held by another process's thread) lets it run instead of spinning out its time slice.
constexpr double kWaitPauseUs = 20;
template <typename Ready>
inline void wait_until(Ready&& ready) {
  if (ready()) return;
  const auto start = std::chrono::steady_clock::now();
  while (!ready()) {
    if (std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count() < kWaitPauseUs) {
      for (int i = 0; i < 16; ++i) _mm_pause();
    } else {
      std::this_thread::yield();
    }
  }
}

// One member's view of a running job.
struct Member {
  int id;      // 0 .. n - 1 (0: the calling thread; then helpers in the order they joined, or
               // the OpenMP thread number)
  int n;       // shares of every loop (the job's most members)
  Team* team;  // null when the job runs alone
  mutable int loops = 0;  // loops this member has entered

  // Waits until every item of the loops this member has entered is done (by any member).
  void sync() const;
};

// A loop of the job: `total` units split into one contiguous share per member id; share s
// is one word, (next unit << 32) | end, so its owner (from the front) and thieves (from the
// back) take units with one compare-and-swap.
struct SharedLoop {
  std::atomic<int> state{0};  // 0: not set up in this job, 1: being set up, 2: ready
  int64_t total = 0;
  std::atomic<int64_t> done{0};  // units finished
  std::unique_ptr<std::atomic<uint64_t>[]> share;

  // Sets the loop up for `units` units and n shares (the first member to arrive), or waits
  // until that member has.
  void enter(int64_t units, int n) {
    int expected = 0;
    if (state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      total = units;
      done.store(0, std::memory_order_relaxed);
      const int64_t q = units / n, r = units % n;
      for (int s = 0; s < n; ++s) {
        const int64_t begin = s * q + std::min<int64_t>(s, r), end = begin + q + (s < r);
        share[s].store(static_cast<uint64_t>(begin) << 32 | static_cast<uint64_t>(end),
                       std::memory_order_relaxed);
      }
      state.store(2, std::memory_order_release);
    } else {
      wait_until([this] { return state.load(std::memory_order_acquire) == 2; });
    }
  }

  // The next unit of share s from the front (owner) or the back (thief); false when empty.
  bool take(int s, bool front, int64_t* unit) {
    uint64_t word = share[s].load(std::memory_order_acquire);
    while ((word >> 32) < (word & 0xffffffffu)) {
      const uint64_t next = front ? word + (uint64_t{1} << 32) : word - 1;
      if (share[s].compare_exchange_weak(word, next, std::memory_order_acq_rel)) {
        *unit = front ? static_cast<int64_t>(word >> 32)
                      : static_cast<int64_t>(word & 0xffffffffu) - 1;
        return true;
      }
    }
    return false;
  }

  void wait_done() const {
    wait_until([this] { return done.load(std::memory_order_acquire) >= total; });
  }
};

class Team {
 public:
  // Runs f(const Member&) on the caller and on the helpers that join before it is done (at
  // most n members in all) and returns when all of them are done.
  template <typename F>
  static void run(int n, F&& f) {
    Team& t = instance();
    if (n <= 1 || !t.busy_.try_lock()) {
      f(Member{0, 1, nullptr});
      return;
    }
    std::lock_guard<std::mutex> hold(t.busy_, std::adopt_lock);
    t.prepare_loops(n);
    if (t.use_openmp()) {
#pragma omp parallel num_threads(n)
      f(Member{omp_get_thread_num(), omp_get_num_threads(), &t});
      return;  // the end of the region waits for every member
    }
    t.n_ = n;
    t.grow(n - 1);
    using Body = std::remove_reference_t<F>;
    t.fn_ = [](void* ctx, const Member& m) { (*static_cast<Body*>(ctx))(m); };
    t.ctx_ = const_cast<void*>(static_cast<const void*>(&f));
    t.left_.store(0, std::memory_order_relaxed);
    const uint64_t job = t.generation_.load(std::memory_order_relaxed) + 1;
    t.join_.store(job << 32, std::memory_order_seq_cst);
    t.generation_.store(job, std::memory_order_seq_cst);
    if (t.sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(t.wake_mutex_);
      t.wake_.notify_all();
    }
    const Member me{0, n, &t};
    f(me);
    me.sync();  // the helpers' last items
    const int joined =
        static_cast<int>(t.join_.fetch_or(kJoinSealed, std::memory_order_acq_rel) & kJoinCount);
    wait_until([&t, joined] { return t.left_.load(std::memory_order_acquire) >= joined; });
  }

  // Runs body(i) for the items i of [0, total) that member m takes of loop m.loops (its own
  // share from the front, then the others' from their backs) and counts them done.
  template <typename Body>
  void share_loop(const Member& m, int64_t total, Body&& body) {
    if (m.loops >= kMaxLoops) std::abort();  // conv_forward has at most 4 loops per job
    SharedLoop& loop = loops_[m.loops++];
    const int64_t per_unit = total / kMaxUnits + 1;  // 1 for any tensor that fits in memory
    loop.enter((total + per_unit - 1) / per_unit, m.n);
    for (int k = 0; k < m.n; ++k) {
      const int s = (m.id + k) % m.n;
      int64_t unit;
      while (loop.take(s, k == 0, &unit)) {
        const int64_t end = std::min(total, (unit + 1) * per_unit);
        for (int64_t i = unit * per_unit; i < end; ++i) body(i);
        loop.done.fetch_add(1, std::memory_order_acq_rel);
      }
    }
  }

  void wait_loops(int count) const {
    for (int j = 0; j < count; ++j) loops_[j].wait_done();
  }

 private:
  // The process's team. Never destroyed: helpers may still wait on its members while the
  // process exits. A child of fork() gets a new one: the parent's helpers do not exist there,
  // and its mutexes and condition variable may hold their state (waiters) mid-operation.
  static Team& instance() {
    static Team* team = [] {
      pthread_atfork(nullptr, nullptr, [] {
        team = new Team();
        team->forked_ = true;
      });
      return new Team();
    }();
    return *team;
  }

  // Before a job of at most n members starts (no helper is in a job): n shares per loop and
  // every loop not set up.
  void prepare_loops(int n) {
    if (n > shares_) {
      for (SharedLoop& loop : loops_) loop.share.reset(new std::atomic<uint64_t>[n]);
      shares_ = n;
    }
    for (SharedLoop& loop : loops_) loop.state.store(0, std::memory_order_relaxed);
  }

  // Starts helpers until there are `count`, before the job's generation is published: a new
  // helper waits for the generation after the current one.
  void grow(int count) {
    const uint64_t current = generation_.load(std::memory_order_acquire);
    while (helpers_ < count) {
      ++helpers_;
      std::thread([this, current] { serve(current); }).detach();
    }
  }

  // Whether jobs run in an OpenMP parallel region of the caller instead of on the helpers:
  // under MXNet's NaiveEngine (MXNET_ENGINE_TYPE=NaiveEngine) ops run in the calling thread,
  // whose OpenMP team oneDNN uses as well and keeps spinning between ops (libgomp's default
  // when that team is the only one), so the op's helpers would compete with it for the CPUs;
  // there the op takes the same team. MXCOMPRESS_XNOR_THREADS=openmp|team overrides the
  // choice. Never in a child of fork(): libgomp's team of the parent does not exist there.
  bool use_openmp() const {
    static const bool openmp = [] {
      const char* choice = std::getenv("MXCOMPRESS_XNOR_THREADS");
      if (choice != nullptr && std::strcmp(choice, "openmp") == 0) return true;
      if (choice != nullptr && std::strcmp(choice, "team") == 0) return false;
      const char* engine = std::getenv("MXNET_ENGINE_TYPE");
      return engine != nullptr && std::strcmp(engine, "NaiveEngine") == 0;
    }();
    return openmp && !forked_;
  }

  // Joins job `job` as a member (its id, 1 ..), unless it is sealed or full: -1.
  int join(uint64_t job) {
    uint64_t word = join_.load(std::memory_order_acquire);
    while ((word >> 32) == (job & 0xffffffffu) && !(word & kJoinSealed) &&
           static_cast<int>(word & kJoinCount) < n_ - 1) {
      if (join_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel))
        return static_cast<int>(word & kJoinCount) + 1;
    }
    return -1;
  }

  void serve(uint64_t seen) {
    for (;;) {
      const auto start = std::chrono::steady_clock::now();
      while (generation_.load(std::memory_order_acquire) == seen) {
        const double waited = std::chrono::duration<double, std::micro>(
                                  std::chrono::steady_clock::now() - start).count();
        if (waited < kSpinPauseUs) {
          for (int i = 0; i < 16; ++i) _mm_pause();
        } else if (waited < kSpinYieldUs) {
          std::this_thread::yield();
        } else {
          std::unique_lock<std::mutex> lock(wake_mutex_);
          sleepers_.fetch_add(1, std::memory_order_seq_cst);
          wake_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
          sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        }
      }
      seen = generation_.load(std::memory_order_acquire);
      const int id = join(seen);
      if (id < 0) continue;  // sealed without us (the caller was done) or full
      fn_(ctx_, Member{id, n_, this});
      left_.fetch_add(1, std::memory_order_release);
    }
  }

  bool forked_ = false;  // made in a child of fork()
  std::mutex busy_;  // held by the caller of a job
  int helpers_ = 0;
  int shares_ = 0;  // shares allocated per loop
  int n_ = 0;       // the helper job's most members (join() admits n_ - 1 helpers)
  void (*fn_)(void*, const Member&) = nullptr;
  void* ctx_ = nullptr;
  SharedLoop loops_[kMaxLoops];
  std::atomic<uint64_t> generation_{0};
  // the job's generation (high 32 bits), sealed flag and count of helpers that joined it
  std::atomic<uint64_t> join_{0};
  std::atomic<int> left_{0};  // helpers of the job that have finished it
  std::atomic<int> sleepers_{0};
  std::mutex wake_mutex_;
  std::condition_variable wake_;
};

inline void Member::sync() const {
  if (team != nullptr) team->wait_loops(loops);
}

// f(i0, i1, i2) over [0, n0) x [0, n1) x [0, n2), row-major (as OpenMP's collapse(3)), shared
// among the job's members with stealing (Team::share_loop); no wait at the end.
template <typename F>
inline void for_share(const Member& m, int64_t n0, int64_t n1, int64_t n2, F&& f) {
  auto item = [&](int64_t i) { f(i / (n1 * n2), i / n2 % n1, i % n2); };
  const int64_t total = n0 * n1 * n2;
  if (m.team == nullptr) {
    for (int64_t i = 0; i < total; ++i) item(i);
    return;
  }
  m.team->share_loop(m, total, item);
}

#endif  // MXCOMPRESS_XNOR_TEAM_H_
