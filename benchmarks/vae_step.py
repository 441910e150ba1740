"""Milliseconds per paper-protocol MNIST-VAE training step (8x4, 3 seeds as one ensemble,
batch 100, update included) on one device: ST, and GR-MCK with K = 1000 drawn in one block
(what the code does on a GPU) and in CPU-sized blocks (what it did before on every device).

    .venv/bin/python benchmarks/vae_step.py --device cuda

Each line trains one epoch of --images images through the experiment's own train_setting; the
first (ST) warms the device up. On a CPU both GR-MCK lines run the same code (blocks are
CPU-sized there).
"""
import argparse

import torch

from reinmax import estimators
from reinmax.experiments.vae import VAEConfig, load_images, train_setting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--images", type=int, default=20000, help="images per timed epoch")
    args = parser.parse_args()
    config = VAEConfig(configs=["8x4"], methods=["ST", "GR-MCK"], seeds=[0, 1, 2], epochs=1,
                       train_subset=args.images, test_subset=100, device=args.device)
    device = config.resolved_device()
    train = load_images("train", args.images, None, device)
    test = load_images("test", 100, None, device)
    one_block = estimators.GUMBEL_RAO_KERNEL["block_accelerator"]
    runs = [("warm-up", "ST", one_block), ("ST", "ST", one_block),
            ("GR-MCK one block", "GR-MCK", one_block),
            ("GR-MCK CPU-sized blocks", "GR-MCK", estimators.GUMBEL_RAO_KERNEL["block"]),
            ("GR-MCK one block, again", "GR-MCK", one_block)]
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), "
          f"torch threads {torch.get_num_threads()}")
    for label, method, block in runs:
        with estimators.gumbel_rao_kernel(block_accelerator=block):
            record = train_setting(config, "8x4", method, train, test, progress=False)
        per_step = record["history"]["epoch_wall_s"][0] / record["steps"]
        print(f"{label}: {per_step * 1e3:.2f} ms per step ({record['steps']} steps)", flush=True)


if __name__ == "__main__":
    main()
