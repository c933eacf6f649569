# One-step install of Office Appliance on Windows: finds Python 3.11+ and runs install.py.
# Usage: powershell -ExecutionPolicy Bypass -File installer\install.ps1 [--home DIR] [--service] [--uninstall] ...
$ErrorActionPreference = 'Stop'
$script = Join-Path $PSScriptRoot 'install.py'
$candidates = @(@('py', '-3'), @('python'), @('python3'))
foreach ($candidate in $candidates) {
    $exe = $candidate[0]
    $pre = @($candidate | Select-Object -Skip 1)
    if (-not (Get-Command $exe -ErrorAction SilentlyContinue)) { continue }
    & $exe @pre -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>$null
    if ($LASTEXITCODE -eq 0) {
        & $exe @pre $script @args
        exit $LASTEXITCODE
    }
}
Write-Error 'install: Python 3.11 or newer is needed; get it from https://www.python.org/downloads/ or the Microsoft Store.'
exit 1
