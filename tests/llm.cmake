# projector / packing / text model / sampler / in-process generation (model/, pipeline/)
hired_add_test(test_pack SOURCES unit/test_pack.c LIBS hired_llm LABELS unit)
# converted or device-copied weights give the checkpoint's mapped pages back (st_model_release)
hired_add_test(test_weights SOURCES unit/test_weights.c LIBS hired_model LABELS unit)
hired_add_test(test_sampler SOURCES unit/test_sampler.c LIBS hired_llm LABELS unit)
hired_add_test(test_run_cli SOURCES integration/test_run_cli.c LIBS hired_common hired_kernels LABELS integration)
add_dependencies(test_run_cli hired)
# test_llm without arguments: behaviour and errors; "kv": the KV-cache check (LLaVA-NeXT, r = 0.2
# vs 1.0). With MODEL FIRST COUNT: fidelity against tests/fixtures/llm on a shard of MODEL's
# images (the vision tower of every image runs, slow under ASan, so the images are spread over
# several ctest entries).
hired_add_test(test_llm SOURCES fidelity/test_llm.c LIBS hired_run LABELS unit)
add_test(NAME test_llm_kv COMMAND test_llm kv)
hired_test_properties(test_llm_kv LABELS fidelity)
# the Yi/ChatML and Llama-3 checkpoints: single-image, text-only, multi-turn and two-image
# conversations through their own chat templates
foreach(model llava-next-yi-tiny llava-next-llama3-tiny)
  add_test(NAME test_llm_chat_${model} COMMAND test_llm chat ${model})
  hired_test_properties(test_llm_chat_${model} LABELS fidelity)
endforeach()
foreach(shard "llava-next-tiny;0;2" "llava-next-tiny;2;2" "llava-next-tiny;4;2" "llava-next-tiny;6;2"
              "llava-next-tiny;8;2" "llava15-tiny;0;5" "llava15-tiny;5;5")
  list(GET shard 0 model)
  list(GET shard 1 first)
  list(GET shard 2 count)
  set(name test_llm_${model}_${first})
  add_test(NAME ${name} COMMAND test_llm ${model} ${first} ${count})
  hired_test_properties(${name} LABELS fidelity)
endforeach()
# 8-bit linear layers (decoder.weights = q8): how far the logits move and where greedy tokens
# first differ from the reference, on both fixture models
foreach(shard "llava-next-tiny;0;3" "llava-next-tiny;3;3" "llava-next-tiny;6;4" "llava15-tiny;0;5" "llava15-tiny;5;5")
  list(GET shard 0 model)
  list(GET shard 1 first)
  list(GET shard 2 count)
  set(name test_llm_q8_${model}_${first})
  add_test(NAME ${name} COMMAND test_llm q8 ${model} ${first} ${count})
  hired_test_properties(${name} LABELS fidelity)
endforeach()
# bf16-held linear layers (decoder.weights = bf16, what auto picks on a CPU with native bf16):
# the same checks with their own bounds
foreach(shard "llava-next-tiny;0;5" "llava-next-tiny;5;5" "llava15-tiny;0;5" "llava15-tiny;5;5")
  list(GET shard 0 model)
  list(GET shard 1 first)
  list(GET shard 2 count)
  set(name test_llm_bf16_${model}_${first})
  add_test(NAME ${name} COMMAND test_llm bf16 ${model} ${first} ${count})
  hired_test_properties(${name} LABELS fidelity)
endforeach()
# --compat authors against the HiRED authors' fork (fixtures from make_authors_fixtures.py), in
# two shards of five images
add_executable(test_compat fidelity/test_compat.c)
target_include_directories(test_compat PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_compat PRIVATE hired_encode hired_llm)
foreach(first 0 5)
  add_test(NAME test_compat_${first} COMMAND test_compat ${first} 5)
  hired_test_properties(test_compat_${first} LABELS fidelity)
endforeach()
# No heap allocation per generated token nor per vision layer once a context is warm (counted
# through common/mem.h's hook).
hired_add_test(test_zero_alloc SOURCES unit/test_zero_alloc.c LIBS hired_run LABELS unit)
# Continuous batching (pipeline/gen_sched.h): batched vs alone vs gen_decode on both fixture
# models, cancellation mid-batch, admission by KV blocks, the never-fits refusal.
hired_add_test(test_sched SOURCES unit/test_sched.c LIBS hired_generate TIMEOUT 900 LABELS unit)
