// Boost.Asio compiled once for the OPC UA client test program
// (BOOST_ASIO_SEPARATE_COMPILATION).
#include <boost/asio/impl/src.hpp>
