"""GPU measurements of qcode's engine on a Qwen3.6-27B-shaped model (issue 6): see run_device.sh."""
