# rCM and UniPC samplers. Owner: sampler work.
