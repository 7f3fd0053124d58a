#!/usr/bin/env python3
"""Trains a weight file written by `mhc export` with torch.distributed (DistributedDataParallel) and writes one that
`mhc` loads back (`eval`/`inspect`/`sample --weights`, `train --init-from`). docs/scale-out.md has the whole path.

    python3 -m torch.distributed.run --nproc_per_node 2 interop/python/train_ddp.py \\
        --weights in.safetensors --data text.txt --steps 100 --out out.safetensors

gloo on CPUs, NCCL where CUDA is. Every step draws one global batch of windows from the training part of the text
(the same for any number of processes); each rank takes its own slice of it, DDP averages the gradients. AdamW with
mhc's parameter groups and learning-rate schedule; rank 0 writes the result. Run without a launcher it trains in one
process.
"""
import argparse
import math
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mhc_twin  # noqa: E402  (beside this file)


def arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="the starting weights: safetensors, hf layout, run config in the metadata (mhc export)")
    parser.add_argument("--data", required=True, help="a UTF-8 text file or folder of .txt files; its last validation_fraction is not trained on")
    parser.add_argument("--steps", type=int, required=True, help="optimizer steps")
    parser.add_argument("--out", required=True, help="where rank 0 writes the trained weights (safetensors, hf layout)")
    parser.add_argument("--batch-size", type=int, help="windows per step over all processes (default: the run config's batch_size)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the run config's)")
    parser.add_argument("--warmup-steps", type=int, help="linear warm-up steps (default: the run config's)")
    parser.add_argument("--seed", type=int, help="seed of the batch order (default: the run config's)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="arithmetic of the training (the file is float32)")
    parser.add_argument("--eval-data", help="after training, rank 0 prints the whole-text loss of the result on this text, as `mhc eval --data`")
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "warmup_steps", "seed"):
        value = getattr(args, name)
        if value is not None and value < (1 if name in ("steps", "batch_size") else 0):
            parser.error(f"--{name.replace('_', '-')} = {value} is out of range")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr = {args.lr} is out of range: allowed > 0")
    return args


def learning_rate(training, step, steps, peak, warmup):
    """mhc's schedule (LearningRateSchedule): linear warm-up, then cosine to min_lr_ratio·peak, or the step decay."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if training.get("schedule", "cosine") == "step":
        fraction = step / steps
        return peak * ([1.0] + [factor for at, factor in ((0.8, 0.316), (0.9, 0.1)) if fraction >= at])[-1]
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    floor = peak * training.get("min_lr_ratio", 0.1)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def parameter_groups(model, weight_decay):
    """mhc's WeightDecayPolicy: matrices decay; norms, biases, gates, mHC's base/scale and HC's static matrix do not."""
    decayed = [p for name, p in model.named_parameters() if p.dim() >= 2 and not name.endswith("static_alpha")]
    chosen = {id(p) for p in decayed}
    return [{"params": decayed, "weight_decay": weight_decay},
            {"params": [p for p in model.parameters() if id(p) not in chosen], "weight_decay": 0.0}]


def start_process_group():
    """(rank, world size, device): from torchrun's environment, or one process on its own."""
    if "RANK" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(s.getsockname()[1]), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def train(args):
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    try:
        model, config, metadata = mhc_twin.load(args.weights, dtype)
        tokens, name = mhc_twin.text_tokens(args.data, config)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 4 if "weight file" in str(e) else 3
    training, seq_len = config.get("training", {}), config["model"]["seq_len"]
    held_out = round(len(tokens) * config.get("data", {}).get("validation_fraction", 0.1))
    train_tokens = torch.tensor(tokens[:len(tokens) - held_out])
    if len(train_tokens) < seq_len + 1:
        print(f"error: data '{args.data}' has {len(train_tokens):,} training tokens: too short for seq_len = {seq_len}", file=sys.stderr)
        return 3
    batch = args.batch_size or training.get("batch_size", 16)
    peak = args.lr or training.get("learning_rate", 2e-3)
    warmup = training.get("warmup_steps", 40) if args.warmup_steps is None else args.warmup_steps
    seed = training.get("seed", 0) if args.seed is None else args.seed
    clip = training.get("grad_clip", 1.0)

    rank, world, device = start_process_group()
    if batch % world:
        if rank == 0:
            print(f"error: --batch-size {batch} is not a multiple of the {world} processes: each takes an equal slice", file=sys.stderr)
        return 2
    torch.manual_seed(seed)
    model.to(device).train()
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(parameter_groups(model, training.get("weight_decay", 0.1)), lr=peak,
                                  betas=(training.get("beta1", 0.9), training.get("beta2", 0.95)))
    share = batch // world
    if rank == 0:
        print(f"data: {name}, {len(train_tokens):,} training tokens; {world} process(es) × {share} windows of {seq_len}, "
              f"{dist.get_backend()} on {device.type}, {args.dtype}")
    times = []
    for step in range(args.steps):
        began = time.perf_counter()
        # One global batch per step whatever the number of processes; this rank's slice of it.
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
        starts = torch.randint(0, len(train_tokens) - seq_len, (batch,), generator=generator)[rank * share:(rank + 1) * share]
        rows = torch.stack([train_tokens[s:s + seq_len + 1] for s in starts.tolist()]).to(device)
        lr = learning_rate(training, step, args.steps, peak, warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        logits = ddp(rows[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()   # DDP averages the gradients over the processes here
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else float("inf"))
        optimizer.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        times.append(time.perf_counter() - began)
        if rank == 0:
            print(f"step {step + 1}/{args.steps}  loss {float(mean) / world:.9f}  grad_norm {float(norm):.6f}  lr {lr:.6g}  {times[-1] * 1000:.1f} ms", flush=True)
    if rank == 0:
        timed = times[1:] or times
        print(f"mean step time {sum(timed) / len(timed) * 1000:.1f} ms over {len(timed)} step(s){' (the first left out)' if len(times) > 1 else ''}")
        mhc_twin.save(model, args.out, metadata)
        print(f"wrote {args.out} (safetensors, hf layout, f32)")
        if args.eval_data:
            evaluate(model.cpu().float(), config, args.eval_data)
    dist.barrier()
    return 0


def evaluate(model, config, path):
    tokens, _ = mhc_twin.text_tokens(path, config)
    seq_len = config["model"]["seq_len"]
    loss, predicted, windows = mhc_twin.whole_text_loss(model, tokens, seq_len, config.get("training", {}).get("batch_size", 16))
    print(f"validation loss {loss:.6f} nats/token, perplexity {math.exp(loss):.2f} "
          f"({predicted:,} tokens predicted in {windows:,} consecutive windows of up to {seq_len})")


def main(argv=None):
    code = train(arguments(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    if dist.is_initialized():
        dist.destroy_process_group()
        os._exit(code)   # gloo's threads can keep a finished process from exiting
    return code


if __name__ == "__main__":
    sys.exit(main())
