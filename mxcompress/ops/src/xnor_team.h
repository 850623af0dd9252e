// The thread team of conv_forward (included once by xnor_kernel.cc, inside its anonymous
// namespace; not a public header). Needs <atomic>, <chrono>, <condition_variable>, <mutex>,
// <thread>, <type_traits>, <pthread.h>: included by xnor_kernel.cc outside the namespaces.
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
// spinning for kSpinPause (pause instructions), then yielding the CPU to anything runnable
// until kSpinYield, then sleeping on a condition variable. A job's members are the caller
// (member 0) and the helpers that join it within kJoinUs; a helper that comes later skips it,
// so a helper that is asleep or whose CPU is taken costs the call at most kJoinUs instead of
// a wait for the scheduler (on a host whose second vCPU was descheduled for milliseconds at a
// time the trained bnn-resnet ran 8.0 ms per image on 2 threads with fixed members, 0.66 ms
// with joining, 0.40 ms on 1 thread). Member::sync() is a barrier of the job's members and
// Member::split() the static share of a loop (as OpenMP's schedule(static)). One job at a
// time: a call that finds the team busy (two MXNet workers, or threads of the caller) runs
// alone on its own thread. A child of fork() starts a team of its own (pthread_atfork).
#ifndef MXCOMPRESS_XNOR_TEAM_H_
#define MXCOMPRESS_XNOR_TEAM_H_

constexpr double kJoinUs = 20;         // the caller waits this long for helpers to join
constexpr uint64_t kJoinSealed = uint64_t{1} << 31, kJoinCount = kJoinSealed - 1;
constexpr double kSpinPauseUs = 50;    // helpers: pause-spin this long after a job ...
constexpr double kSpinYieldUs = 300;   // ... then yield-spin until this, then sleep

class Team;

// One member's view of a running job.
struct Member {
  int id;     // 0 .. n - 1 (0: the calling thread)
  int n;      // members in the job
  Team* team;  // null when the job runs alone (n == 1)

  // The barrier of the job's n members.
  void sync() const;

  // This member's share [*begin, *end) of [0, total): contiguous, sizes differing by at most 1
  // (the first total % n members take one more).
  void split(int64_t total, int64_t* begin, int64_t* end) const {
    const int64_t q = total / n, r = total % n;
    *begin = id * q + std::min<int64_t>(id, r);
    *end = *begin + q + (id < r ? 1 : 0);
  }
};

class Team {
 public:
  // Runs f(const Member&) on n members (the caller and n - 1 helpers) and returns when all
  // are done.
  template <typename F>
  static void run(int n, F&& f) {
    Team& t = instance();
    if (n <= 1 || !t.busy_.try_lock()) {
      f(Member{0, 1, nullptr});
      return;
    }
    std::lock_guard<std::mutex> hold(t.busy_, std::adopt_lock);
    t.grow(n - 1);
    using Body = std::remove_reference_t<F>;
    t.fn_ = [](void* ctx, const Member& m) { (*static_cast<Body*>(ctx))(m); };
    t.ctx_ = const_cast<void*>(static_cast<const void*>(&f));
    t.n_ = n;
    t.done_.store(0, std::memory_order_relaxed);
    const uint64_t job = t.generation_.load(std::memory_order_relaxed) + 1;
    t.join_.store(job << 32, std::memory_order_seq_cst);
    t.generation_.store(job, std::memory_order_seq_cst);
    if (t.sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(t.wake_mutex_);
      t.wake_.notify_all();
    }
    // the members: the caller and the helpers that join within kJoinUs
    const auto start = std::chrono::steady_clock::now();
    while (static_cast<int>(t.join_.load(std::memory_order_acquire) & kJoinCount) < n - 1 &&
           std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                   .count() < kJoinUs)
      _mm_pause();
    const int joined =
        static_cast<int>(t.join_.fetch_or(kJoinSealed, std::memory_order_acq_rel) & kJoinCount);
    t.members_.store(joined + 1, std::memory_order_relaxed);
    t.go_.store(job, std::memory_order_release);
    f(Member{0, joined + 1, joined > 0 ? &t : nullptr});
    while (t.done_.load(std::memory_order_acquire) < joined) _mm_pause();
  }

  void barrier(int n) {
    const uint64_t phase = barrier_phase_.load(std::memory_order_acquire);
    if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == n - 1) {
      barrier_count_.store(0, std::memory_order_relaxed);
      barrier_phase_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    while (barrier_phase_.load(std::memory_order_acquire) == phase) _mm_pause();
  }

 private:
  // The process's team. Never destroyed: helpers may still wait on its members while the
  // process exits. A child of fork() gets a new one: the parent's helpers do not exist there,
  // and its mutexes and condition variable may hold their state (waiters) mid-operation.
  static Team& instance() {
    static Team* team = [] {
      pthread_atfork(nullptr, nullptr, [] { team = new Team(); });
      return new Team();
    }();
    return *team;
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
      if (id < 0) continue;  // sealed without us (we came late) or full
      while (go_.load(std::memory_order_acquire) != seen) _mm_pause();
      fn_(ctx_, Member{id, members_.load(std::memory_order_relaxed), this});
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  std::mutex busy_;  // held by the caller of a job
  int helpers_ = 0;
  void (*fn_)(void*, const Member&) = nullptr;
  void* ctx_ = nullptr;
  int n_ = 0;
  std::atomic<uint64_t> generation_{0};
  // the job's generation (high 32 bits), sealed flag and count of helpers that joined it
  std::atomic<uint64_t> join_{0};
  std::atomic<int> members_{0};   // the job's members, final once go_ == its generation
  std::atomic<uint64_t> go_{0};
  std::atomic<int> done_{0};
  std::atomic<int> sleepers_{0};
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<int> barrier_count_{0};
  std::atomic<uint64_t> barrier_phase_{0};
};

inline void Member::sync() const {
  if (team != nullptr) team->barrier(n);
}

// f(i0, i1, i2) over member m's static share of [0, n0) x [0, n1) x [0, n2), row-major (as
// OpenMP's collapse(3) schedule(static)); no barrier.
template <typename F>
inline void for_share(const Member& m, int64_t n0, int64_t n1, int64_t n2, F&& f) {
  int64_t begin, end;
  m.split(n0 * n1 * n2, &begin, &end);
  for (int64_t i = begin; i < end; ++i) f(i / (n1 * n2), i / n2 % n1, i % n2);
}

#endif  // MXCOMPRESS_XNOR_TEAM_H_
