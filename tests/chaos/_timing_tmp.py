import time, test_fuzz
orig = test_fuzz.Rig.run
def run(self, sample):
    t = time.monotonic(); out = orig(self, sample)
    print(f"{time.monotonic()-t:5.2f}s status={out.status} {out.phase}/{out.reason} req={len(out.requests)} {sample.category} {sample.note[:50]}", flush=True)
    return out
test_fuzz.Rig.run = run
