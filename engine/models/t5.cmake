# umT5 encoder, tokenizer, prompt cache. Owner: text work.
