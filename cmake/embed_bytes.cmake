# embed_bytes.cmake: what the build's embedding scripts (embed_web.cmake, embed_lua.cmake)
# share: a file's bytes as the body of a C array. Plain CMake only: no xxd, no python.
#
#   embed_bytes(PATH C_NAME OUT_DEFINITION OUT_LEN)
# sets OUT_DEFINITION to "static const unsigned char C_NAME[LEN + 1] = {0x.., ..., 0x00};"
# (the bytes, then a NUL not counted in LEN) and OUT_LEN to LEN.

# CMake's regular expressions have no {n}: spell out 16 bytes for the line breaks.
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 embed_bytes_line16)

function(embed_bytes path cname out_def out_len)
  file(READ "${path}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  # 0xAB, per byte; a line break every 16 bytes keeps the source readable by editors.
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(${embed_bytes_line16})" "\\1\n    " bytes "${bytes}")
  set(${out_def} "static const unsigned char ${cname}[${len} + 1] = {\n    ${bytes}0x00};\n" PARENT_SCOPE)
  set(${out_len} "${len}" PARENT_SCOPE)
endfunction()

# write_if_changed(PATH TEXT): writes only when the text changed, so that unchanged inputs
# do not rebuild the library.
function(write_if_changed path text)
  set(old "")
  if(EXISTS "${path}")
    file(READ "${path}" old)
  endif()
  if(NOT old STREQUAL text)
    file(WRITE "${path}.tmp" "${text}")
    file(RENAME "${path}.tmp" "${path}")
  endif()
endfunction()
