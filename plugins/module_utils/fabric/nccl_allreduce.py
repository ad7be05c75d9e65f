# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The NCCL all-reduce bus-bandwidth probe the gpu_check module runs on a host: one process per local GPU
(PyTorch, NCCL backend), a float32 all-reduce of SIZE bytes timed over ITERS iterations after warm-ups, the
result checked (every rank's sum must be right) and printed as one JSON line. Bus bandwidth follows
nccl-tests: algbw = bytes / time, busbw = algbw * 2 (n - 1) / n."""

SCRIPT = r'''
import json, os, sys, tempfile, time
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank, world, size, iters, warmup, init, out):
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=init, rank=rank, world_size=world,
                            device_id=torch.device("cuda", rank))
    n = size // 4
    x = torch.full((n,), float(rank + 1), dtype=torch.float32, device="cuda")
    for _ in range(warmup):
        dist.all_reduce(x)
    x.fill_(float(rank + 1))
    dist.all_reduce(x)
    torch.cuda.synchronize()
    ok = bool(torch.all(x == world * (world + 1) / 2).item())
    dist.barrier()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        dist.all_reduce(x)
    torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / iters
    times = [None] * world
    dist.all_gather_object(times, (elapsed, ok))
    if rank == 0:
        worst = max(t for t, _ in times)
        algbw = size / worst / 1e9
        with open(out, "w") as f:
            json.dump({"world": world, "size_mib": size // 2**20, "iters": iters, "seconds": worst,
                       "algbw_gbps": algbw, "busbw_gbps": algbw * 2 * (world - 1) / world,
                       "correct": all(c for _, c in times), "torch": torch.__version__,
                       "nccl": ".".join(map(str, torch.cuda.nccl.version()))}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    size, iters, warmup = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    world = torch.cuda.device_count()
    if world < 2:
        print(json.dumps({"world": world, "error": "fewer than 2 GPUs: no all-reduce to measure"}))
        sys.exit(0)
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, "result.json")
    mp.spawn(worker, args=(world, size, iters, warmup, "file://" + os.path.join(tmp, "rendezvous"), out),
             nprocs=world)
    with open(out) as f:
        print(f.read())
'''
