# T2V / I2V pipelines, tiny checkpoints, generate. Owner: pipeline work.
