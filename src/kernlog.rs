//! mlx5 LAG lines in the kernel log, in every format the kernel has used.
