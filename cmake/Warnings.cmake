# Warnings and hardening for every target (style.md section 8).
# Modelled on curl's PickyWarnings and OpenSSH's configure hardening.
set(TS_WARNINGS
	-Wall -Wextra -Werror
	-Wshadow -Wpointer-arith -Wcast-qual -Wwrite-strings -Wstrict-prototypes
	-Wmissing-prototypes -Wformat=2 -Wimplicit-fallthrough -Wsign-compare
	-Wundef -Wvla)
add_compile_options(${TS_WARNINGS})

include(CheckCCompilerFlag)
set(TS_HARDEN -fstack-protector-strong -fPIE)
foreach(flag -ftrivial-auto-var-init=zero -fzero-call-used-regs=used)
	string(MAKE_C_IDENTIFIER "HAVE${flag}" var)
	check_c_compiler_flag(${flag} ${var})
	if(${var})
		list(APPEND TS_HARDEN ${flag})
	endif()
endforeach()
add_compile_options(${TS_HARDEN})
add_link_options(-pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack)

if(TOKENSIGN_SANITIZE)
	add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
		-fno-omit-frame-pointer)
	add_link_options(-fsanitize=address,undefined)
else()
	# _FORTIFY_SOURCE needs optimisation and conflicts with ASan.
	add_compile_options($<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=3>)
endif()

if(TOKENSIGN_FUZZ)
	# Instrument every library the targets link, not only the target
	# files, so coverage guides the fuzzer through our parsers; ASan and
	# UBSan turn silent corruption into crashes.
	if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
		message(FATAL_ERROR "TOKENSIGN_FUZZ needs clang (CC=clang)")
	endif()
	add_compile_options(-fsanitize=fuzzer-no-link)
	if(NOT TOKENSIGN_SANITIZE)
		add_compile_options(-fsanitize=address,undefined
			-fno-sanitize-recover=all)
		add_link_options(-fsanitize=address,undefined)
	endif()
endif()
