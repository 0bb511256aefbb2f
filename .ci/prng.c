/* ProcessPrng, which Go >= 1.22 on Windows needs and wine 8.0 lacks, forwarded to
   SystemFunction036 (RtlGenRandom). Built by .ci/wine into the test prefix. */
#include <windows.h>
typedef BOOLEAN (WINAPI *genrandom)(PVOID, ULONG);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    static genrandom f;
    if (!f) f = (genrandom)GetProcAddress(LoadLibraryA("advapi32.dll"), "SystemFunction036");
    return f && f(data, (ULONG)len);
}
BOOL WINAPI DllMain(HINSTANCE h, DWORD reason, LPVOID r) { return TRUE; }
